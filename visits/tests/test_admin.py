import time_machine

from visits.models import CallLog
from visits.services import call_event_record


def test_the_call_log_is_read_only_in_the_appointment_and_its_list(staff, video_visit, patient, doctor, starts_at):
    with time_machine.travel(starts_at, tick=False) as clock:
        call_event_record(actor=doctor.user, appointment_id=video_visit.pk, event="join")
        call_event_record(actor=patient, appointment_id=video_visit.pk, event="join")
        clock.shift(2)
        call_event_record(actor=patient, appointment_id=video_visit.pk, event="connected", route="relay")
        clock.shift(125)
        call_event_record(actor=patient, appointment_id=video_visit.pk, event="leave")
        call_event_record(actor=doctor.user, appointment_id=video_visit.pk, event="leave")

    page = staff.get(f"/admin/appointments/appointment/{video_visit.pk}/change/").content.decode().lower()
    assert "who joined and left when" in page and "pat patient join" in page and "2 min 05 s" in page
    assert "chest pain" in page  # the appointment's own form, as before: staff see the reason

    log = CallLog.objects.get(appointment=video_visit)
    listing = staff.get("/admin/visits/calllog/").content.decode()
    assert "2 min 05 s" in listing
    detail = staff.get(f"/admin/visits/calllog/{log.pk}/change/").content.decode()
    assert "Relay (TURN)" in detail and "Connected" in detail
    assert staff.post(f"/admin/visits/calllog/{log.pk}/delete/").status_code == 403
    assert staff.get("/admin/visits/calllog/add/").status_code == 403
