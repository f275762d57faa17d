"""The ring reaches a patient with no socket open by SMS (VIDEO_CALL is one of the SMS-only offline types)."""

import pytest
import time_machine
from asgiref.sync import async_to_sync

from notifications import presence
from notifications.sms import BaseSMSBackend, fits_one_segment
from tests.support.worker import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


class CapturedSMS(BaseSMSBackend):
    sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        CapturedSMS.sent.append((phone, text))


@pytest.fixture(autouse=True)
def _sms(settings, patient):
    settings.SMS_BACKEND = "visits.tests.test_ring_sms.CapturedSMS"
    CapturedSMS.sent = []
    patient.notify_sms, patient.phone = True, "+8801712345678"
    patient.save()


def ring(api, doctor, visit):
    assert api(doctor).post(f"/api/appointments/{visit.pk}/call/ring/").status_code == 200


def test_an_offline_patient_is_rung_by_sms_without_the_reason(api, video_visit, doctor, starts_at):
    with time_machine.travel(starts_at, tick=False):
        run_worker(starting=True)
        ring(api, doctor, video_visit)
        run_worker()
    [(phone, text)] = CapturedSMS.sent
    assert phone == "+8801712345678"
    assert text == "Dr. Doc is calling you for your video visit. MediConnect"
    assert "chest pain" not in text and fits_one_segment(text)


def test_a_bangla_patient_gets_it_in_bangla_in_one_segment(api, video_visit, patient, doctor, starts_at):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    with time_machine.travel(starts_at, tick=False):
        run_worker(starting=True)
        ring(api, doctor, video_visit)
        run_worker()
    [(_, text)] = CapturedSMS.sent
    assert "Dr. Doc" in text and "MediConnect" in text and fits_one_segment(text)


def test_a_patient_with_a_socket_open_gets_no_sms(api, video_visit, patient, doctor, starts_at):
    announce = async_to_sync(presence.backend().announce)
    with time_machine.travel(starts_at, tick=False):
        run_worker(starting=True)
        announce("test-node", online=[patient.pk], offline=[])
        try:
            ring(api, doctor, video_visit)
            run_worker()
        finally:
            announce("test-node", online=[], offline=[patient.pk])
    assert CapturedSMS.sent == []
