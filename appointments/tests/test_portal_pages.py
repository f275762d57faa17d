"""The portal pages' shell: the config and the text their scripts are given, and the webfont."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from appointments.models import Status

pytestmark = pytest.mark.django_db

JS = Path(settings.BASE_DIR) / "static" / "js"
# Every module a portal page loads besides its own script (imports, also those made on first use,
# are followed from it).
IMPORT = re.compile(r'\b(?:from |import\()"\./([\w-]+\.js)"')
# t("key"), `prefix.${…}` (filled below), and the labels the rows' buttons name.
LITERAL_KEY = re.compile(r'\bt\(\s*"([\w.]+)"')
TEMPLATE_KEY = re.compile(r"`(\w+\.)\$\{")
ANY_KEY = re.compile(r'"((\w+\.)\w+)"')  # "conn.connecting": a key of a family named above
LABEL_KEY = re.compile(r'\blabel: "([\w.]+)"')
# What the templated keys are filled with: statuses, and the socket's states (socket.js).
FILLERS = {
    "status.": [s.value for s in Status],
    "conn.": ["connecting", "connected", "reconnecting", "offline", "disconnected"],
    "state.": ["waiting", "connecting", "connected", "ended", "failed"],  # the visit's call (visit.js)
}


def modules_of(script: str) -> list[Path]:
    seen, todo = [], [JS / script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        todo += [JS / name for name in IMPORT.findall(path.read_text())]
    return seen


def keys_asked_by(script: str) -> set[str]:
    keys = set()
    for path in modules_of(script):
        text = path.read_text()
        keys |= set(LITERAL_KEY.findall(text)) | set(LABEL_KEY.findall(text))
        for prefix in TEMPLATE_KEY.findall(text):
            keys |= {prefix + value for value in FILLERS[prefix]}
    families = {key.split(".")[0] + "." for key in keys}
    for path in modules_of(script):
        keys |= {key for key, family in ANY_KEY.findall(path.read_text()) if family in families}
    return keys


def page_json(client, user, path: str, element: str, language: str = "en") -> dict:
    user.language = language
    user.save(update_fields=["language"])
    client.force_login(user)
    html = client.get(path).content.decode()
    found = re.search(rf'<script id="{element}" type="application/json">(.*?)</script>', html, re.S)
    assert found, f"{element} missing on {path}"
    return json.loads(found.group(1))


@pytest.fixture
def pages(patient, doctor):
    from appointments.tests.factories import AppointmentFactory

    visit = AppointmentFactory(patient=patient, doctor=doctor, mode="VIDEO")
    return {
        "patient.js": (patient, "/patient/"),
        "doctor.js": (doctor.user, "/doctor/"),
        "visit.js": (doctor.user, f"/visit/{visit.pk}/"),
    }


@pytest.mark.parametrize("script", ["patient.js", "doctor.js", "visit.js"])
def test_every_text_the_scripts_ask_for_is_on_the_page_in_both_languages(client, pages, script):
    user, path = pages[script]
    asked = keys_asked_by(script)
    scan_works = {"conn.offline", "state.failed"} if script == "visit.js" else {"notifications.new", "action.cancel"}
    assert scan_works | {"status.CANCELLED" if script != "visit.js" else "media.denied"} <= asked

    english = page_json(client, user, path, "mc-strings")
    bangla = page_json(client, user, path, "mc-strings", "bn")

    assert asked - set(english) == set()
    # And each is translated: no Bangla page shows an English sentence.
    assert [key for key in asked if bangla[key] == english[key]] == []


def test_the_pages_get_the_moves_their_user_may_make_from_the_server(client, pages):
    doctor_config = page_json(client, *pages["doctor.js"], "mc-config")
    patient_config = page_json(client, *pages["patient.js"], "mc-config")

    assert doctor_config["moves"] == {
        "PENDING": ["CONFIRMED", "CANCELLED"],
        "CONFIRMED": ["CANCELLED", "COMPLETED", "NO_SHOW"],
    }
    assert patient_config["moves"] == {"PENDING": ["CANCELLED"], "CONFIRMED": ["CANCELLED"]}
    assert patient_config["active_statuses"] == ["PENDING", "CONFIRMED"]
    # No script keeps a table of its own: the statuses a move starts from appear in none of them.
    assert [p.name for p in JS.glob("*.js") if '"PENDING"' in p.read_text() or "PENDING:" in p.read_text()] == []


def test_the_page_config_carries_the_servers_clock_and_day(client, pages, today):
    config = page_json(client, *pages["patient.js"], "mc-config")
    assert config["today"] == today.isoformat()
    assert isinstance(config["now"], int) and config["time_zone"] == settings.TIME_ZONE


def test_the_webfont_has_every_bengali_letter_of_the_catalog():
    from fontTools.ttLib import TTFont

    font_dir = Path(settings.BASE_DIR) / "static" / "fonts"
    font = TTFont(font_dir / "noto-sans-bengali-subset.woff2")
    covered = set(font.getBestCmap())
    catalog = (Path(settings.BASE_DIR) / "locale" / "bn" / "LC_MESSAGES" / "django.po").read_text()
    bengali = {ord(c) for c in catalog if 0x0980 <= ord(c) <= 0x09FF}
    assert len(bengali) > 40 and bengali - covered == set()
    assert "SIL Open Font License, Version 1.1" in (font_dir / "OFL.txt").read_text()  # its licence beside it
