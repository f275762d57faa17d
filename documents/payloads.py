"""The file object of the contract, as REST responses and `file_updated` events carry it."""

from core.payloads import wire_datetime

from .models import AccessLog, File


def file_payload(file: File) -> dict:
    """Needs `patient` and `uploaded_by` loaded (select_related) to avoid queries."""
    return {
        "id": file.pk,
        "patient": file.patient_id,
        "patient_name": file.patient.name,
        "appointment": file.appointment_id,
        "kind": file.kind,
        "title": file.title,
        "content_type": file.content_type,
        "size": file.size,
        "status": file.status,
        "uploaded_by": file.uploaded_by_id,
        "uploaded_by_name": file.uploaded_by.name,
        "created_at": wire_datetime(file.created_at),
    }


def access_log_payload(entries) -> list[dict]:
    """A file's access log, oldest first (`user` loaded): `[{"at","user","user_name","action"}]`."""
    return [
        {
            "at": wire_datetime(entry.at),
            "user": entry.user_id,
            "user_name": entry.user.name if entry.user else None,
            "action": entry.action,
        }
        for entry in entries
    ]


# The actions the API lists (the contract's); the admin shows every entry, retention's too.
LISTED_ACTIONS = (AccessLog.Action.UPLOAD, AccessLog.Action.LINK, AccessLog.Action.DOWNLOAD, AccessLog.Action.DELETE)


ITEM_KEYS = ("medicine", "dose", "frequency", "duration", "instructions")


def prescription_payload(prescription) -> dict:
    """The prescription object of the contract; needs `items` prefetched (or costs one query)."""
    return {
        "id": prescription.pk,
        "appointment": prescription.appointment_id,
        "version": prescription.version,
        "diagnosis": prescription.diagnosis,
        "items": [{key: getattr(item, key) for key in ITEM_KEYS} for item in prescription.items.all()],
        "advice": prescription.advice,
        "follow_up": prescription.follow_up.isoformat() if prescription.follow_up else None,
        "file": prescription.file_id,
        "created_at": wire_datetime(prescription.created_at),
    }
