"""Every change to clinical documents: the API, the admin, the scan worker and retention call these."""

import datetime
import logging

from django.conf import settings
from django.core.files.base import File as DjangoFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Role, User
from appointments.models import Appointment
from appointments.selectors import appointments_visible_to
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from notifications.models import EventType
from notifications.services import notifications_create

from .errors import TooLarge, UnsupportedFile
from .inspection import Refused, inspect_upload
from .links import link_make, link_read
from .models import AccessLog, File
from .payloads import file_payload
from .selectors import files_visible_to, may_see_patient
from .storage import documents_storage
from .texts import notification_about

logger = logging.getLogger(__name__)

Status = File.Status
Action = AccessLog.Action


def _log(file: File, user, action: str) -> AccessLog:
    return AccessLog.objects.create(file=file, user=user, action=action)


def _doctor_told(file: File):
    """The user of the file's appointment's doctor, if they may see the patient's files (the appointment,
    or another, is not cancelled); else None."""
    if not file.appointment_id:
        return None
    doctor_user = file.appointment.doctor.user
    if doctor_user.pk == file.patient_id or not may_see_patient(doctor_user, file.patient_id):
        return None
    return doctor_user


def _audience(file: File) -> list[int]:
    """Who hears of the file: its patient and, for an appointment's file, that appointment's doctor."""
    doctor_user = _doctor_told(file)
    return [file.patient_id] + ([doctor_user.pk] if doctor_user else [])


def _publish(file: File, notifications=()) -> None:
    """Store the change's notifications and a `file_updated` for each of the file's audience."""
    data = file_payload(file)
    notifications_create(
        notifications=list(notifications),
        events=[(user_id, EventType.FILE_UPDATED, data) for user_id in _audience(file)],
    )


def _upload_target(*, actor, appointment_id: int | None, patient_id: int | None) -> tuple[User, Appointment | None]:
    """The file's patient and appointment, as the caller may name them; InvalidInput on the field at fault."""
    appointment = None
    if appointment_id is not None:
        appointment = (
            appointments_visible_to(actor).select_related("doctor__user", "patient").filter(pk=appointment_id).first()
        )
        if appointment is None or not may_see_patient(actor, appointment.patient_id):
            raise InvalidInput(gettext("No such appointment."), field="appointment")
        if patient_id is not None and patient_id != appointment.patient_id:
            raise InvalidInput(gettext("This appointment is another patient's."), field="patient")
        return appointment.patient, appointment
    if actor.role == Role.PATIENT and not actor.is_admin:
        if patient_id not in (None, actor.pk):
            raise InvalidInput(gettext("A patient's files are their own."), field="patient")
        return actor, None
    if patient_id is None:
        raise InvalidInput(gettext("Name the patient or the appointment this file belongs to."), field="patient")
    patient = User.objects.filter(pk=patient_id, role=Role.PATIENT).first()
    if patient is None or not may_see_patient(actor, patient.pk):
        raise InvalidInput(gettext("No such patient."), field="patient")
    return patient, None


def _queue_scan(file: File) -> None:
    # Imported here: the task's module calls these services.
    from .scanning import scan_file

    scan_file.enqueue(file.pk)


def file_upload(
    *,
    actor,
    upload: DjangoFile,
    kind: str,
    title: str = "",
    appointment_id: int | None = None,
    patient_id: int | None = None,
    scan: bool = True,
    notify: bool = True,
) -> File:
    """Store an uploaded file for a patient the caller may see: checked by its bytes (Refused → UnsupportedFile),
    images re-encoded; SCANNING until the worker's clamd verdict when CLAMD_URL is set, else AVAILABLE.

    `upload` is a Django File with a `name` (the uploader's file name, kept as data) and a `size`;
    `scan=False` for a file the server made itself (a prescription's PDF): AVAILABLE at once;
    `notify=False` when the caller tells of it in words of its own (PRESCRIPTION_ISSUED). Every
    check comes before a byte is stored. The checks (a PDF parse, an image's re-encoding) run before
    the transaction opens, so no database lock waits on them (on SQLite every transaction holds the
    write lock); the row, its log entry, events and notifications are written in one transaction.
    """
    if kind not in File.Kind.values:
        raise InvalidInput(gettext("Not a kind of document."), field="kind")
    original_name = (upload.name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255]
    title = (title or "").strip() or original_name[:200] or gettext("Document")
    if len(title) > 200:
        raise InvalidInput(gettext("At most 200 characters."), field="title")
    patient, appointment = _upload_target(actor=actor, appointment_id=appointment_id, patient_id=patient_id)
    if not upload.size:
        raise InvalidInput(gettext("The file is empty."), field="file")
    if upload.size > settings.FILE_MAX_BYTES:
        raise TooLarge(file_too_large_message(), field="file")
    try:
        inspected = inspect_upload(upload)
    except Refused as exc:
        raise UnsupportedFile(str(exc), field="file") from None

    scanning = scan and bool(settings.CLAMD_URL)
    file = File(
        patient=patient,
        appointment=appointment,
        kind=kind,
        title=title,
        original_name=original_name,
        content_type=inspected.content_type,
        size=inspected.size,
        status=Status.SCANNING if scanning else Status.AVAILABLE,
        uploaded_by=actor,
    )
    # The bytes go first, under a random name; if anything after fails, they are taken back.
    file.content.save("upload", inspected.content, save=False)
    try:
        with transaction.atomic():
            file.save(force_insert=True)
            _log(file, actor, Action.UPLOAD)
            if scanning:
                _queue_scan(file)
            notifications = []
            if notify and actor.pk != patient.pk:
                notifications.append(notification_about(patient, "added_patient", file))
            elif notify and appointment is not None:
                if doctor_user := _doctor_told(file):
                    notifications.append(notification_about(doctor_user, "added_doctor", file))
            _publish(file, notifications)
    except BaseException:
        documents_storage.delete(file.content.name)
        raise
    return file


def file_too_large_message() -> str:
    return gettext("The file is larger than %(limit)d bytes.") % {"limit": settings.FILE_MAX_BYTES}


def _locked(file_id: int) -> File:
    return (
        File.objects.select_related("patient", "uploaded_by", "appointment__doctor__user")
        .select_for_update(of=("self",))
        .get(pk=file_id)
    )


@transaction.atomic
def file_scan_result(*, file_id: int, infected: bool) -> File:
    """Record clamd's verdict on a SCANNING file: AVAILABLE, or REJECTED (its uploader is told, its bytes deleted).

    The scan task calls it; a file no longer SCANNING is left as it is.
    """
    file = _locked(file_id)
    if file.status != Status.SCANNING:
        return file
    file.status = Status.REJECTED if infected else Status.AVAILABLE
    file.save(update_fields=["status"])
    notifications = []
    if infected:
        notifications.append(notification_about(file.uploaded_by, "rejected_uploader", file))
        # An infected file is never served: keep the record, not the bytes.
        name = file.content.name
        transaction.on_commit(lambda: documents_storage.delete(name))
    _publish(file, notifications)
    return file


@transaction.atomic
def file_scan_retry(*, file_id: int) -> datetime.datetime | None:
    """The scanner could not be reached: count the attempt and queue the next one, doubling the wait from
    FILE_SCAN_RETRY_SECONDS up to an hour. Returns when it runs (None: the file is no longer SCANNING)."""
    file = _locked(file_id)
    if file.status != Status.SCANNING:
        return None
    file.scan_attempts += 1
    file.save(update_fields=["scan_attempts"])
    delay = min(settings.FILE_SCAN_RETRY_SECONDS * 2 ** min(file.scan_attempts - 1, 16), 3600)
    run_after = timezone.now() + datetime.timedelta(seconds=delay)
    from .scanning import scan_file  # the task's module calls these services

    scan_file.using(run_after=run_after).enqueue(file.pk)
    return run_after


def _visible(actor, file_id: int, *, include_removed: bool = False) -> File:
    file = files_visible_to(actor, include_removed=include_removed).filter(pk=file_id).first()
    if file is None:
        raise NotFound(gettext("No such file."))
    return file


@transaction.atomic
def file_link(*, actor, file_id: int) -> tuple[File, str, datetime.datetime]:
    """A short-lived download link for a file the caller may see; only an AVAILABLE file has one (else Conflict)."""
    file = _visible(actor, file_id)
    if file.status != Status.AVAILABLE:
        raise Conflict(gettext("This file is not available."), field="status")
    url, expires_at = link_make(file_id=file.pk, user_id=actor.pk)
    _log(file, actor, Action.LINK)
    return file, url, expires_at


@transaction.atomic
def file_download(*, token: str) -> File:
    """The file a link opens, its download logged for the link's maker; NotAllowed when the link is expired,
    altered, or its file removed or not available (its maker no longer allowed to see it included)."""
    read = link_read(token)
    if read is None:
        raise NotAllowed(gettext("This link is invalid or has expired."))
    file_id, user_id = read
    user = User.objects.filter(pk=user_id, is_active=True).first()
    file = files_visible_to(user).filter(pk=file_id, status=Status.AVAILABLE).first() if user else None
    if file is None or not file.content:
        raise NotAllowed(gettext("This link is invalid or has expired."))
    _log(file, user, Action.DOWNLOAD)
    return file


@transaction.atomic
def file_remove(*, actor, file_id: int) -> File:
    """Take a file out of every list and read: its patient, its uploader or an admin (others who may see it:
    NotAllowed). Its bytes and record stay for the clinic's records; its links stop working."""
    file = _visible(actor, file_id)
    if not (actor.is_admin or actor.pk in (file.patient_id, file.uploaded_by_id)):
        raise NotAllowed(gettext("Only the patient, the uploader or an admin may remove this file."))
    file = _locked(file.pk)
    if file.removed_at is None:
        file.removed_at, file.removed_by = timezone.now(), actor
        file.save(update_fields=["removed_at", "removed_by"])
        _log(file, actor, Action.DELETE)
    return file


def file_access_log_check(*, actor, file_id: int) -> File:
    """The file whose access log the caller asks for: its patient and admins (others who may see it:
    NotAllowed), removed files included."""
    file = _visible(actor, file_id, include_removed=True)
    if not (actor.is_admin or actor.pk == file.patient_id):
        raise NotAllowed(gettext("Only the patient and admins may read a file's access log."))
    return file


def files_purge(*, removed_before: datetime.datetime) -> int:
    """Delete the bytes of files removed before `removed_before` (retention: `manage.py prune`), one PURGE entry
    each in their access log; the records stay. Files not removed are never touched. Returns how many."""
    purged = 0
    ids = File.objects.filter(removed_at__lt=removed_before, purged_at__isnull=True).values_list("pk", flat=True)
    for file_id in list(ids):
        with transaction.atomic():
            file = File.objects.select_for_update().get(pk=file_id)
            if file.removed_at is None or file.purged_at is not None:
                continue
            name = file.content.name
            file.purged_at = timezone.now()
            file.save(update_fields=["purged_at"])
            _log(file, None, Action.PURGE)
            if name:
                transaction.on_commit(lambda name=name: documents_storage.delete(name))
            purged += 1
    return purged
