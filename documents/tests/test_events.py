"""`file_updated` on the socket, as a client hears it: live after commit, with `id`, and replayed on resume.

Transactional, like every socket test; on SQLite this also shows the flush between tests empties
the append-only access log (conftest's `_access_log_flushable`).
"""

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from appointments.tests.factories import AppointmentFactory
from documents.models import AccessLog
from documents.services import file_scan_result, file_upload
from tests.support import FILE_KEYS
from tests.support.wsutil import frames_until, open_socket, ready

from . import samples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def upload(*, actor, **fields):
    return file_upload(actor=actor, upload=SimpleUploadedFile("r.pdf", samples.pdf()), kind="LAB_REPORT", **fields)


@database_sync_to_async
def scanned(file):
    return file_scan_result(file_id=file.pk, infected=False)


@pytest.fixture
def visit(patient, doctor):
    return AppointmentFactory(patient=patient, doctor=doctor)


def is_file_update(item) -> bool:
    return item["type"] == "file_updated"


async def test_patient_and_doctor_hear_the_file_added_and_its_status_change(patient, doctor, visit, settings):
    settings.CLAMD_URL = "tcp://127.0.0.1:1"  # SCANNING; no worker runs here, the verdict is given below
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor.user)
    await ready(patient_socket)
    await ready(doctor_socket)

    file = await upload(actor=patient, appointment_id=visit.pk)
    await scanned(file)

    for socket in (patient_socket, doctor_socket):
        heard = [
            f
            for f in await frames_until(socket, lambda f: is_file_update(f) and f["data"]["status"] == "AVAILABLE")
            if is_file_update(f)
        ]
        assert [f["data"]["status"] for f in heard] == ["SCANNING", "AVAILABLE"]
        assert all(set(f["data"]) == FILE_KEYS for f in heard)
        assert heard[0]["data"]["id"] == file.pk and heard[0]["data"]["appointment"] == visit.pk
        assert heard[0]["id"] < heard[1]["id"]
        await socket.disconnect()
    assert await database_sync_to_async(AccessLog.objects.count)() == 1


async def test_a_patient_offline_gets_the_file_on_resume(patient, doctor, visit):
    first = await open_socket(patient)
    last = (await ready(first))["last_event_id"] or 0
    await first.disconnect()

    file = await upload(actor=doctor.user, appointment_id=visit.pk)

    again = await open_socket(patient, query=f"last_event_id={last}")
    await ready(again)
    replayed = await frames_until(again, is_file_update)
    assert [f["type"] for f in replayed] == ["new_notification", "file_updated"]
    assert replayed[0]["data"]["type"] == "DOCUMENT_ADDED"
    assert replayed[1]["data"]["id"] == file.pk and replayed[1]["data"]["status"] == "AVAILABLE"
    await again.disconnect()
