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
        "reason": appointment.reason,
        "created_at": wire_datetime(appointment.created_at),
        "updated_at": wire_datetime(appointment.updated_at),
    }
