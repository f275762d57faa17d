"""The documents' services and rules below the API: the append-only access log, status changes with
their events and notifications, retention, and the admin."""

import datetime
import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from appointments.tests.factories import AppointmentFactory
from documents import services
from documents.models import AccessLog, File
from notifications.models import Event, Notification

from .factories import FileFactory
from .samples import pdf

pytestmark = pytest.mark.django_db


# --- the access log is append-only, in the database ----------------------------------------------


@pytest.fixture
def entry(patient):
    file = FileFactory(patient=patient)
    return AccessLog.objects.create(file=file, user=patient, action=AccessLog.Action.UPLOAD)


def test_the_database_refuses_to_change_an_access_log_entry(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AccessLog.objects.filter(pk=entry.pk).update(action=AccessLog.Action.DOWNLOAD)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.action = AccessLog.Action.DELETE
        entry.save()

    entry.refresh_from_db()
    assert entry.action == AccessLog.Action.UPLOAD


def test_the_database_refuses_to_delete_an_access_log_entry(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:  # past the ORM, as a hand-written statement would
            cursor.execute(f"DELETE FROM {AccessLog._meta.db_table} WHERE id = %s", [entry.pk])

    assert AccessLog.objects.filter(pk=entry.pk).exists()


# --- scan verdicts ---------------------------------------------------------------------------------


def file_events(user) -> list[dict]:
    return [e.data for e in Event.objects.filter(user=user, type="file_updated").order_by("seq")]


def test_a_clean_verdict_makes_the_file_available_and_tells_patient_and_doctor(patient, doctor):
    visit = AppointmentFactory(patient=patient, doctor=doctor)
    file = FileFactory(patient=patient, appointment=visit, status=File.Status.SCANNING)

    services.file_scan_result(file_id=file.pk, infected=False)

    for user in (patient, doctor.user):
        assert [e["status"] for e in file_events(user)] == ["AVAILABLE"]
    assert not Notification.objects.exists()
    file.refresh_from_db()
    assert file.content.storage.exists(file.content.name)


def test_an_infected_file_is_rejected_its_uploader_told_and_its_bytes_deleted(
    patient, doctor, django_capture_on_commit_callbacks
):
    visit = AppointmentFactory(patient=patient, doctor=doctor)
    file = FileFactory(
        patient=patient, appointment=visit, uploaded_by=doctor.user, status=File.Status.SCANNING, title="HIV test"
    )
    name = file.content.name

    with django_capture_on_commit_callbacks(execute=True):
        services.file_scan_result(file_id=file.pk, infected=True)

    file.refresh_from_db()
    assert file.status == File.Status.REJECTED
    told = Notification.objects.get()
    assert (told.user, told.type, told.related_type, told.related_id) == (
        doctor.user,
        "DOCUMENT_REJECTED",
        "File",
        file.pk,
    )
    assert "HIV" not in told.title + told.message
    assert [e["status"] for e in file_events(patient)] == ["REJECTED"]
    assert not file.content.storage.exists(name)


def test_a_verdict_on_a_file_no_longer_scanning_changes_nothing(patient):
    file = FileFactory(patient=patient, status=File.Status.AVAILABLE)

    services.file_scan_result(file_id=file.pk, infected=True)

    file.refresh_from_db()
    assert file.status == File.Status.AVAILABLE and not Event.objects.exists()


# --- retention (manage.py prune) -------------------------------------------------------------------


def prune() -> str:
    out = io.StringIO()
    call_command("prune", stdout=out)
    return out.getvalue()


def removed(file: File, *, days_ago: int) -> File:
    File.objects.filter(pk=file.pk).update(
        removed_at=timezone.now() - datetime.timedelta(days=days_ago), removed_by=file.patient
    )
    file.refresh_from_db()
    return file


def test_prune_deletes_the_bytes_of_files_removed_past_retention_only(
    settings, patient, django_capture_on_commit_callbacks
):
    settings.FILE_RETENTION_DAYS = 30
    old = removed(FileFactory(patient=patient), days_ago=31)
    recent = removed(FileFactory(patient=patient), days_ago=29)
    kept = FileFactory(patient=patient, created_at=timezone.now() - datetime.timedelta(days=400))
    File.objects.filter(pk=kept.pk).update(created_at=timezone.now() - datetime.timedelta(days=400))

    with django_capture_on_commit_callbacks(execute=True):
        report = prune()

    assert "the bytes of 1 file(s) removed over 30 day(s) ago deleted" in report
    storage = old.content.storage
    assert not storage.exists(old.content.name)
    assert storage.exists(recent.content.name) and storage.exists(kept.content.name)
    old.refresh_from_db()
    assert old.purged_at is not None and File.objects.filter(pk=old.pk).exists()  # the record stays
    assert list(old.access_log.values_list("user", "action")) == [(None, "PURGE")]
    assert not AccessLog.objects.exclude(file=old).exists()
    # The access log the API lists keeps to the contract's actions.
    assert services.file_access_log_check(actor=patient, file_id=old.pk) == old

    with django_capture_on_commit_callbacks(execute=True):
        assert "the bytes of 0 file(s)" in prune()  # a second run finds nothing more


def test_without_retention_prune_never_touches_files(settings, patient, django_capture_on_commit_callbacks):
    settings.FILE_RETENTION_DAYS = None
    old = removed(FileFactory(patient=patient), days_ago=3000)

    with django_capture_on_commit_callbacks(execute=True):
        report = prune()

    assert "file" not in report
    old.refresh_from_db()
    assert old.purged_at is None and old.content.storage.exists(old.content.name)
    assert not AccessLog.objects.exists()


# --- admin -----------------------------------------------------------------------------------------


def test_the_admin_shows_files_removed_ones_too_read_only_with_their_access_log(client, admin_user, patient):
    file = removed(FileFactory(patient=patient, title="Blood test"), days_ago=1)
    AccessLog.objects.create(file=file, user=patient, action=AccessLog.Action.DELETE)
    client.force_login(admin_user)

    listing = client.get("/admin/documents/file/")
    page = client.get(f"/admin/documents/file/{file.pk}/change/")

    assert listing.status_code == 200 and f"/admin/documents/file/{file.pk}/change/" in listing.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "Blood test" in html and "Delete" in html  # the access log inline
    assert 'name="_save"' not in html  # read-only
    assert client.get("/admin/documents/file/add/").status_code == 403
    assert client.get("/admin/documents/accesslog/").status_code == 200


# --- uploads by the server itself ------------------------------------------------------------------


def test_a_file_the_server_made_is_available_at_once_even_with_a_scanner(settings, patient, doctor):
    settings.CLAMD_URL = "tcp://127.0.0.1:1"
    visit = AppointmentFactory(patient=patient, doctor=doctor)

    made = services.file_upload(
        actor=doctor.user,
        upload=ContentFile(pdf(), name="prescription.pdf"),
        kind=File.Kind.PRESCRIPTION,
        appointment_id=visit.pk,
        scan=False,
    )
    scanned = services.file_upload(
        actor=doctor.user, upload=ContentFile(pdf(), name="lab.pdf"), kind=File.Kind.LAB_REPORT, appointment_id=visit.pk
    )

    assert made.status == File.Status.AVAILABLE and made.title == "prescription.pdf"
    assert scanned.status == File.Status.SCANNING


def test_a_failed_write_takes_the_stored_bytes_back(patient, stored, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_publish", fail)

    with pytest.raises(RuntimeError):
        services.file_upload(actor=patient, upload=ContentFile(pdf(), name="r.pdf"), kind=File.Kind.OTHER)

    assert stored() == [] and not File.objects.exists()


def test_a_doctor_who_may_no_longer_see_the_patient_hears_nothing_of_their_files(patient, doctor):
    visit = AppointmentFactory(patient=patient, doctor=doctor)
    file = FileFactory(patient=patient, appointment=visit, status=File.Status.SCANNING)
    visit.status = "CANCELLED"
    visit.save(update_fields=["status"])

    services.file_scan_result(file_id=file.pk, infected=False)
    services.file_upload(
        actor=patient, upload=ContentFile(pdf(), name="r.pdf"), kind=File.Kind.OTHER, appointment_id=visit.pk
    )

    assert not Event.objects.filter(user=doctor.user).exists()
    assert not Notification.objects.filter(user=doctor.user).exists()
    assert Event.objects.filter(user=patient, type="file_updated").count() == 2
