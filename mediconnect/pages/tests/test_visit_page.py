"""The visit page: its two people only, and what it hands its script."""

import json
import re

import pytest

from accounts.tests.factories import UserFactory
from appointments.models import Mode
from appointments.tests.factories import AppointmentFactory

pytestmark = pytest.mark.django_db


def page_config(response) -> dict:
    found = re.search(r'<script id="mc-config" type="application/json">(.*?)</script>', response.content.decode())
    return json.loads(found.group(1))


@pytest.fixture
def appointment(patient, doctor):
    return AppointmentFactory(patient=patient, doctor=doctor, mode=Mode.VIDEO)


def test_the_patient_and_the_doctor_get_the_page_with_their_sides(client, appointment, patient, doctor):
    client.force_login(patient)
    answer = client.get(f"/visit/{appointment.pk}/")
    assert answer.status_code == 200
    config = page_config(answer)
    assert config["appointment_id"] == appointment.pk
    assert config["polite"] is True  # the patient yields on crossing offers
    assert config["peer_name"] == doctor.user.name
    assert config["force_relay"] is False
    for hook in ("call-state", "remote-video", "mute", "camera-off", "hang-up", "audio-only"):
        assert f'data-testid="{hook}"' in answer.content.decode()

    client.force_login(doctor.user)
    config = page_config(client.get(f"/visit/{appointment.pk}/?relay=1"))
    assert config["polite"] is False
    assert config["peer_name"] == patient.name
    assert config["force_relay"] is True


def test_relay_only_for_every_call_by_setting(client, settings, appointment, patient):
    settings.VIDEO_FORCE_RELAY = True
    client.force_login(patient)
    assert page_config(client.get(f"/visit/{appointment.pk}/"))["force_relay"] is True


def test_anyone_else_finds_nothing_there(client, appointment):
    client.force_login(UserFactory())
    assert client.get(f"/visit/{appointment.pk}/").status_code == 404
    assert client.get("/visit/999999/").status_code == 404


def test_signed_out_goes_to_the_login_page(client, appointment):
    answer = client.get(f"/visit/{appointment.pk}/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/")


def test_the_page_speaks_bangla(client, appointment, patient):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    client.force_login(patient)
    text = client.get(f"/visit/{appointment.pk}/").content.decode()
    assert 'lang="bn"' in text
