"""The appointment object of the contract, as REST responses and `appointment_updated` events carry it.

A plain function, not a serializer: the services build event payloads with it (the domain does not
import DRF), and the output serializer returns it, so a client has one shape to parse.
"""

from core.payloads import wire_date, wire_datetime, wire_time

from .models import Appointment


def appointment_payload(appointment: Appointment) -> dict:
    """Needs `patient` and `doctor.user` loaded (select_related) to avoid queries."""
    return {
        "id": appointment.pk,
        "patient": appointment.patient_id,
        "patient_name": appointment.patient.name,
        "doctor": appointment.doctor_id,
        "doctor_name": appointment.doctor.user.name,
        "date": wire_date(appointment.date),
        "time": wire_time(appointment.time),
        "status": appointment.status,
        "queue_number": appointment.queue_number,
        "mode": appointment.mode,
        "reason": appointment.reason,
        "created_at": wire_datetime(appointment.created_at),
        "updated_at": wire_datetime(appointment.updated_at),
    }


# The audit trail's fields, by their names in the appointment object; `completed_at` is the one
# that object does not carry.
HISTORY_FIELDS = ["patient", "doctor", "date", "time", "status", "queue_number", "mode", "reason", "completed_at"]
_WIRE = {"date": wire_date, "time": wire_time, "completed_at": wire_datetime}


def _history_values(record) -> dict:
    values = {}
    for name in HISTORY_FIELDS:
        value = getattr(record, record._meta.get_field(name).attname)
        values[name] = _WIRE[name](value) if name in _WIRE else value
    return values


def appointment_history_payload(records) -> list[dict]:
    """An appointment's audit trail from its historical rows (oldest first, `history_user` loaded).

    Each entry: `{"at", "actor", "actor_name", "changes": {field: [old, new]}}`. The first entry
    is the booking, each field it set going from null to its value; a save that changed nothing
    is left out. Values look as in the appointment object (`patient` a user id, `doctor` a doctor
    id, `date` YYYY-MM-DD, `time` HH:MM).
    """
    entries, before = [], dict.fromkeys(HISTORY_FIELDS)
    for record in records:
        after = _history_values(record)
        changes = {name: [before[name], after[name]] for name in HISTORY_FIELDS if before[name] != after[name]}
        before = after
        if not changes:
            continue
        user = record.history_user
        entries.append(
            {
                "at": wire_datetime(record.history_date),
                "actor": user.pk if user else None,
                "actor_name": user.name if user else None,
                "changes": changes,
            }
        )
    return entries
