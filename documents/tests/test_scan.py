"""The virus scan through the task worker, against a clamd of the test's own (tests/support/clamd.py):
clean → AVAILABLE, EICAR → REJECTED, clamd away → SCANNING and retried until it is back."""

import datetime
import io

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from documents.models import File
from documents.scanning import ScannerDown, scan_stream
from documents.services import file_scan_retry
from notifications.models import Event, Notification
from tests.support.clamd import EICAR
from tests.support.worker import run_worker

from . import samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def scanner(settings, clamd):
    settings.CLAMD_URL = clamd.url
    settings.FILE_SCAN_RETRY_SECONDS = 30
    return clamd


def upload(client, data: bytes, name="report.pdf"):
    file = SimpleUploadedFile(name, data, content_type="application/pdf")
    response = client.post("/api/files/", {"file": file, "kind": "LAB_REPORT"}, format="multipart")
    assert response.status_code == 201
    return response.json()


def statuses(user) -> list[str]:
    return [e.data["status"] for e in Event.objects.filter(user=user, type="file_updated").order_by("seq")]


def test_our_clamd_knows_eicar(scanner):
    assert scan_stream(io.BytesIO(EICAR), url=scanner.url, timeout=10) is not None
    assert scan_stream(io.BytesIO(samples.pdf()), url=scanner.url, timeout=10) is None


def test_a_clean_pdf_goes_from_scanning_to_available_on_the_worker(api, patient, scanner):
    body = upload(api(patient), samples.pdf())

    assert body["status"] == "SCANNING"  # the request did not scan
    assert api(patient).post(f"/api/files/{body['id']}/link/").status_code == 409

    run_worker()

    assert api(patient).get(f"/api/files/{body['id']}/").json()["status"] == "AVAILABLE"
    assert statuses(patient) == ["SCANNING", "AVAILABLE"]
    assert api(patient).post(f"/api/files/{body['id']}/link/").status_code == 200


def test_eicar_is_rejected_and_its_uploader_told(api, patient, scanner):
    body = upload(api(patient), samples.pdf_with_eicar())

    run_worker()

    assert api(patient).get(f"/api/files/{body['id']}/").json()["status"] == "REJECTED"
    assert statuses(patient) == ["SCANNING", "REJECTED"]
    told = Notification.objects.get(user=patient)
    assert (told.type, told.related_type, told.related_id) == ("DOCUMENT_REJECTED", "File", body["id"])
    assert api(patient).post(f"/api/files/{body['id']}/link/").status_code == 409


def test_while_clamd_is_down_a_file_stays_scanning_and_is_retried(api, patient, scanner):
    scanner.stop()
    try:
        body = upload(api(patient), samples.pdf())
        run_worker()

        file = File.objects.get(pk=body["id"])
        assert file.status == File.Status.SCANNING and file.scan_attempts == 1
        retry = DBTaskResult.objects.get(status="READY")
        assert retry.run_after > timezone.now() + datetime.timedelta(seconds=25)  # put off, not spun on

        run_worker()  # not yet due: nothing runs
        assert File.objects.get(pk=body["id"]).status == File.Status.SCANNING
    finally:
        scanner.start()

    with time_machine.travel(retry.run_after + datetime.timedelta(seconds=1), tick=False):
        run_worker()

    assert api(patient).get(f"/api/files/{body['id']}/").json()["status"] == "AVAILABLE"
    assert statuses(patient) == ["SCANNING", "AVAILABLE"]


def test_the_retry_waits_longer_each_time(patient, scanner, settings):
    scanner.stop()
    try:
        file = File.objects.create(
            patient=patient,
            uploaded_by=patient,
            kind=File.Kind.OTHER,
            title="t",
            original_name="t.pdf",
            content_type="application/pdf",
            size=1,
            status=File.Status.SCANNING,
            content=SimpleUploadedFile("x", samples.pdf()),
        )
        waits = []
        for _ in range(3):
            now = timezone.now()
            waits.append(round((file_scan_retry(file_id=file.pk) - now).total_seconds()))
        assert waits == [30, 60, 120]
    finally:
        scanner.start()


def test_an_unreachable_scanner_is_no_verdict(scanner):
    with pytest.raises(ScannerDown):
        scan_stream(io.BytesIO(b"x"), url="tcp://127.0.0.1:1", timeout=2)
