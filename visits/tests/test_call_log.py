"""POST …/call/events/: the call log (no content) and the calls_* counters of /metrics."""

import datetime

import pytest
import time_machine
from prometheus_client import REGISTRY

from visits.models import CallEvent, CallLog

pytestmark = pytest.mark.django_db(transaction=True)  # the counters count after commit

SECOND = datetime.timedelta(seconds=1)


def counters() -> dict:
    names = ("started", "connected", "failed")
    return {name: REGISTRY.get_sample_value(f"mediconnect_calls_{name}_total") for name in names}


def delta(before: dict, after: dict) -> dict:
    return {name: after[name] - before[name] for name in before}


def report(api, who, appointment, event, route=None):
    body = {"event": event} | ({"route": route} if route else {})
    return api(who).post(f"/api/appointments/{appointment.pk}/call/events/", body, format="json")


def test_a_call_that_connects_is_logged_with_its_route_and_length(api, video_visit, patient, doctor, starts_at):
    before = counters()
    with time_machine.travel(starts_at - 2 * 60 * SECOND, tick=False) as clock:
        assert report(api, doctor, video_visit, "join").status_code == 204
        clock.shift(30)
        assert report(api, patient, video_visit, "join").status_code == 204
        clock.shift(2)
        assert report(api, patient, video_visit, "connected", "relay").status_code == 204
        assert report(api, doctor, video_visit, "connected", "relay").status_code == 204
        clock.shift(600)
        assert report(api, patient, video_visit, "leave").status_code == 204
        log = CallLog.objects.get(appointment=video_visit)
        assert log.ended_at is None  # the doctor is still in
        clock.shift(5)
        assert report(api, doctor, video_visit, "leave").status_code == 204

    log.refresh_from_db()
    assert (log.calls, log.route, log.failed) == (1, "relay", False)
    assert log.duration_seconds == 605
    events = [(e.user_id, e.event, e.route) for e in CallEvent.objects.filter(log=log)]
    assert events == [
        (doctor.user.pk, "join", ""),
        (patient.pk, "join", ""),
        (patient.pk, "connected", "relay"),
        (doctor.user.pk, "connected", "relay"),
        (patient.pk, "leave", ""),
        (doctor.user.pk, "leave", ""),
    ]
    assert delta(before, counters()) == {"started": 1, "connected": 1, "failed": 0}


def test_a_failed_call_then_a_second_call_that_connects_directly(api, video_visit, patient, doctor, starts_at):
    before = counters()
    with time_machine.travel(starts_at, tick=False) as clock:
        report(api, doctor, video_visit, "join"), report(api, patient, video_visit, "join")
        report(api, patient, video_visit, "failed"), report(api, doctor, video_visit, "failed")
        report(api, patient, video_visit, "leave"), report(api, doctor, video_visit, "leave")
        clock.shift(60)
        report(api, patient, video_visit, "join"), report(api, doctor, video_visit, "join")
        report(api, doctor, video_visit, "connected", "direct")

    log = CallLog.objects.get(appointment=video_visit)
    assert (log.calls, log.route, log.failed, log.ended_at) == (2, "direct", False, None)
    assert delta(before, counters()) == {"started": 2, "connected": 1, "failed": 1}


def test_bad_input_is_a_field_error_and_logs_nothing(api, video_visit, patient, starts_at):
    with time_machine.travel(starts_at, tick=False):
        bad_event = report(api, patient, video_visit, "ringing")
        bad_route = report(api, patient, video_visit, "connected", "satellite")
        missing = api(patient).post(f"/api/appointments/{video_visit.pk}/call/events/", {}, format="json")
    assert (bad_event.status_code, list(bad_event.json())) == (400, ["event"])
    assert (bad_route.status_code, list(bad_route.json())) == (400, ["route"])
    assert (missing.status_code, list(missing.json())) == (400, ["event"])
    assert not CallEvent.objects.exists()


def test_the_call_rules_hold_for_the_log(api, video_visit, patient2, admin_user, starts_at):
    with time_machine.travel(starts_at, tick=False):
        assert report(api, admin_user, video_visit, "join").status_code == 403
        assert report(api, patient2, video_visit, "join").status_code == 404
    with time_machine.travel(starts_at + 121 * 60 * SECOND, tick=False):
        assert report(api, video_visit.patient, video_visit, "join").status_code == 409
    assert not CallEvent.objects.exists()


def test_the_counters_are_on_metrics(client, video_visit, api, patient, starts_at):
    with time_machine.travel(starts_at, tick=False):
        report(api, patient, video_visit, "join")
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    for name in ("started", "connected", "failed"):
        assert f"mediconnect_calls_{name}_total " in text
