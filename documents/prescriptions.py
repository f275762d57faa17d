"""E-prescriptions (contract v1.2): the appointment's doctor issues them, versioned, each with a PDF in the
patient's files.

The input is checked here, not only by the API's serializer, so that every caller (the API, a portal
form, the admin) gets the same rules; the errors are keyed the way DRF keys a serializer's, a list of
one object per item for `items`, so the API returns them as they are.
"""

import datetime
import logging
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy, pgettext

from appointments.models import Appointment, Status
from appointments.selectors import appointments_visible_to
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from notifications.services import notifications_create

from .models import File, Prescription, PrescriptionItem
from .pdf import render_prescription
from .services import file_upload
from .storage import documents_storage
from .texts import prescription_notification

logger = logging.getLogger(__name__)

ISSUABLE = (Status.CONFIRMED, Status.COMPLETED)
MAX_ITEMS = 30
# (name, most characters, required, may be blank)
ITEM_FIELDS = (
    ("medicine", 200, True, False),
    ("dose", 100, True, True),
    ("frequency", 100, True, True),
    ("duration", 100, True, True),
    ("instructions", 300, False, True),
)
DIAGNOSIS_MAX, ADVICE_MAX = 500, 2000
# A concurrent issue took the version this one rendered: render again with the next (rarely more than once).
RENDER_ATTEMPTS = 5

REQUIRED = gettext_lazy("This field is required.")


class InvalidPrescription(InvalidInput):
    """Bad fields; `errors` holds them keyed as DRF keys a serializer's errors."""

    def __init__(self, errors: dict):
        field = next(iter(errors))
        super().__init__(gettext("Invalid prescription."), field=field)
        self.errors = errors


@dataclass(frozen=True)
class PrescriptionInput:
    diagnosis: str
    items: list[dict]
    advice: str
    follow_up: datetime.date | None


def _text(value, *, most: int, blank: bool, optional: bool) -> tuple[str, str | None]:
    """The cleaned string and None, or "" and the error (DRF CharField's rules: trimmed, no NUL, no surrogates)."""
    if value is None:
        return ("", None) if optional else ("", gettext("This field may not be null."))
    if not isinstance(value, str) or isinstance(value, bool):
        if isinstance(value, int | float):
            value = str(value)
        else:
            return "", gettext("Not a valid string.")
    if "\x00" in value:
        return "", gettext("Null characters are not allowed.")
    if any("\ud800" <= c <= "\udfff" for c in value):
        return "", gettext("Surrogate characters are not allowed.")
    value = value.strip()
    if not value and not blank:
        return "", gettext("This field may not be blank.")
    if len(value) > most:
        return "", gettext("Ensure this field has no more than %(n)d characters.") % {"n": most}
    return value, None


def _date(value, *, today: datetime.date) -> tuple[datetime.date | None, str | None]:
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        try:
            date = datetime.date.fromisoformat(value)
            if len(value) != 10:
                raise ValueError
        except ValueError:
            date = None
    else:
        date = None
    if date is None:
        return None, gettext("Date has wrong format. Use one of these formats instead: YYYY-MM-DD.")
    if date < today:
        return None, gettext("The follow-up date is in the past.")
    return date, None


def _item(raw) -> tuple[dict, dict]:
    if not isinstance(raw, dict):
        return {}, {"non_field_errors": [gettext("Invalid data. Expected a dictionary.")]}
    item, errors = {}, {}
    for name, most, required, blank in ITEM_FIELDS:
        if name not in raw:
            if required:
                errors[name] = [str(REQUIRED)]
            item[name] = ""
            continue
        item[name], error = _text(raw[name], most=most, blank=blank, optional=not required)
        if error:
            errors[name] = [error]
    return item, errors


def prescription_clean(*, diagnosis=None, items=None, advice=None, follow_up=None) -> PrescriptionInput:
    """The fields of a new prescription, checked (InvalidPrescription with DRF-shaped errors) and trimmed.

    `follow_up` may be a date or `YYYY-MM-DD`, not before today in the clinic's time zone.
    """
    errors: dict = {}
    diagnosis, error = _text(diagnosis, most=DIAGNOSIS_MAX, blank=True, optional=True)
    if error:
        errors["diagnosis"] = [error]
    cleaned_items = []
    if items is None:
        errors["items"] = [str(REQUIRED)]
    elif not isinstance(items, list):
        errors["items"] = [
            gettext('Expected a list of items but got type "%(type)s".') % {"type": type(items).__name__}
        ]
    elif not items:
        errors["items"] = [gettext("This list may not be empty.")]
    elif len(items) > MAX_ITEMS:
        errors["items"] = [gettext("Ensure this field has no more than %(n)d elements.") % {"n": MAX_ITEMS}]
    else:
        per_item = [_item(raw) for raw in items]
        if any(item_errors for _, item_errors in per_item):
            errors["items"] = [item_errors for _, item_errors in per_item]
        cleaned_items = [item for item, _ in per_item]
    advice, error = _text(advice, most=ADVICE_MAX, blank=True, optional=True)
    if error:
        errors["advice"] = [error]
    if isinstance(follow_up, datetime.date) and not isinstance(follow_up, datetime.datetime):
        follow_up = follow_up.isoformat()
    follow_up, error = _date(follow_up, today=timezone.localdate())
    if error:
        errors["follow_up"] = [error]
    if errors:
        raise InvalidPrescription(errors)
    return PrescriptionInput(diagnosis=diagnosis, items=cleaned_items, advice=advice, follow_up=follow_up)


def _appointment_for(actor, appointment_id: int) -> Appointment:
    appointment = appointments_visible_to(actor).filter(pk=appointment_id).first()
    if appointment is None:
        raise NotFound(gettext("No such appointment."))
    return appointment


def _next_version(appointment_id: int) -> int:
    return (Prescription.objects.filter(appointment_id=appointment_id).aggregate(v=Max("version"))["v"] or 0) + 1


def _check_status(appointment: Appointment) -> None:
    if appointment.status not in ISSUABLE:
        raise Conflict(gettext("A prescription is issued for a confirmed or completed appointment only."))


def prescription_issue(
    *, actor, appointment_id: int, diagnosis=None, items=None, advice=None, follow_up=None
) -> Prescription:
    """Issue the next version of an appointment's prescription, its PDF stored AVAILABLE in the patient's files.

    The appointment's doctor only (others who may see it: NotAllowed; who may not: NotFound); the
    appointment CONFIRMED or COMPLETED (else Conflict). The PDF is rendered outside any transaction,
    with the version it expects; the appointment's row is then locked, and if another issue took that
    version meanwhile, the PDF is rendered again with the next. The patient gets PRESCRIPTION_ISSUED.
    """
    appointment = _appointment_for(actor, appointment_id)
    if appointment.doctor.user_id != actor.pk:
        raise NotAllowed(gettext("Only the appointment's doctor may issue its prescription."))
    fields = prescription_clean(diagnosis=diagnosis, items=items, advice=advice, follow_up=follow_up)
    _check_status(appointment)
    version = _next_version(appointment.pk)
    for _ in range(RENDER_ATTEMPTS):
        issued_at = timezone.now()
        pdf = render_prescription(appointment=appointment, fields=fields, version=version, issued_at=issued_at)
        with transaction.atomic():
            appointment = appointments_visible_to(actor).select_for_update(of=("self",)).get(pk=appointment.pk)
            _check_status(appointment)
            current = _next_version(appointment.pk)
            if current == version:
                return _store(actor=actor, appointment=appointment, fields=fields, version=version, pdf=pdf)
        version = current
    raise Conflict(gettext("The prescription changed while it was issued; try again."))


def _store(*, actor, appointment: Appointment, fields: PrescriptionInput, version: int, pdf: bytes) -> Prescription:
    """The file, the prescription, its items and the patient's notification; in the caller's locked transaction."""
    patient = appointment.patient
    name = f"prescription-{appointment.pk}-v{version}.pdf"
    with translation.override(patient.language or "en"):
        title = pgettext("document title", "Prescription %(date)s (version %(version)d)") % {
            "date": appointment.date.isoformat(),
            "version": version,
        }
    file = None
    try:
        file = file_upload(
            actor=actor,
            upload=ContentFile(pdf, name=name),
            kind=File.Kind.PRESCRIPTION,
            title=title[:200],
            appointment_id=appointment.pk,
            scan=False,
            notify=False,
        )
        prescription = Prescription.objects.create(
            appointment=appointment,
            version=version,
            diagnosis=fields.diagnosis,
            advice=fields.advice,
            follow_up=fields.follow_up,
            file=file,
            created_by=actor,
        )
        PrescriptionItem.objects.bulk_create(
            PrescriptionItem(prescription=prescription, position=position, **item)
            for position, item in enumerate(fields.items, start=1)
        )
        notifications_create(notifications=[prescription_notification(patient, appointment)])
    except BaseException:
        if file is not None:
            # The rows roll back with the caller's transaction; the bytes are taken back here.
            documents_storage.delete(file.content.name)
        raise
    return prescription
