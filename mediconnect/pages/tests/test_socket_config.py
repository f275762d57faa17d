"""The socket's close and error codes reach the scripts through the pages' config, from core/wire.py only."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from core import wire
from queues.tests.factories import BoardFactory

pytestmark = pytest.mark.django_db

JS = Path(settings.BASE_DIR) / "static" / "js"


def config_on(client, path: str, element: str) -> dict:
    html = client.get(path).content.decode()
    found = re.search(rf'<script id="{element}" type="application/json">(.*?)</script>', html, re.S)
    assert found, f"{element} missing on {path}"
    return json.loads(found.group(1))


def test_the_portals_and_the_board_hand_the_scripts_the_wires_codes(client, patient, doctor):
    client.force_login(patient)
    configs = [config_on(client, "/patient/", "mc-config")]
    client.force_login(doctor.user)
    configs.append(config_on(client, "/doctor/", "mc-config"))
    configs.append(config_on(client, f"/board/{BoardFactory(doctors=[doctor]).token}/", "board-config"))

    for config in configs:
        assert config["close_codes"] == wire.CLOSE_CODES
        assert config["error_codes"] == list(wire.ERROR_CODES)


def test_no_script_spells_a_close_code_of_its_own():
    codes = "|".join(str(code) for code in wire.CLOSE_CODES.values())
    spelled = {}
    for script in JS.glob("*.js"):
        code = re.sub(r"//.*", "", script.read_text())  # comments may name a code; code may not
        found = re.findall(rf"\b(?:{codes})\b", code)
        if found:
            spelled[script.name] = found
    assert spelled == {}
    assert "closeCodes.too_many_sockets" in (JS / "socket.js").read_text()  # the scan reads the right scripts
