"""The video visit in Chromium: two browser contexts (the doctor, the patient) with fake cameras, a
real daphne (or two nodes behind nginx) and a coturn of the run's own on the loopback.

Relay-only ICE (`?relay=1`): on one machine two browsers would otherwise connect directly and the
relay would carry nothing. What is checked is what the browsers themselves report: the call state
the page shows, and getStats() of the page's RTCPeerConnection (found by wrapping the constructor in
an init script: the page keeps its connection to itself). Every wait polls the page with a timeout.
"""

import contextlib
import datetime
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.tests.factories import PASSWORD, UserFactory
from appointments.models import Appointment, Mode, Status
from appointments.tests.factories import AppointmentFactory
from tests.live import BROWSER_TEST, CHROMIUM, CHROMIUM_ARGS, NGINX, Daphne, Nginx
from tests.support.coturn import start_coturn
from tests.support.frames import check_frame
from visits.models import CallEvent, CallLog

pytestmark = BROWSER_TEST

expect.set_options(timeout=20_000)

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
CALL_TIMEOUT = 30_000  # ms: relay-only calls connected in about 1.5 s on this machine

# Keeps every RTCPeerConnection the page makes, for getStats() from the test.
RECORD_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__connections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__connections.push(this); }
  };
})();
"""

# The page's live connection, as its browser sees it: the ICE policy, the selected candidate pair's
# two ends, and the video frames decoded so far.
CALL_STATS = """
async () => {
  const pc = window.__connections.filter((c) => c.connectionState !== "closed").at(-1);
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null, frames = 0;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  const ends = pair ? [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)] : [];
  return {
    policy: pc.getConfiguration().iceTransportPolicy,
    state: pc.connectionState,
    ends: ends.map((c) => c && c.candidateType),
    frames,
  };
}
"""


@pytest.fixture(scope="module")
def playwright():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop in this thread; plain ORM calls
    try:
        with sync_playwright() as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser(playwright):
    """Chromium with a fake camera and microphone that the user allows (the prompt answered yes).

    One per test: in a Chromium that had already held a call, a new context's connection was seen to
    stay "gathering" without ever asking coturn for a relay (coturn's log shows no request from it)."""
    instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *FAKE_MEDIA])
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    """A coturn of this module's own: the session's has the TURN tests' allocations on it (they live
    their 10 minutes), and with them a browser's allocation was seen never answered (the call stuck
    at "connecting" whenever tests/test_turn*.py ran first in the same session)."""
    server = start_coturn(tmp_path_factory.mktemp("visit-coturn"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def visit_server(django_db_setup, django_db_blocker, coturn):
    """One daphne whose calls hand out the test coturn as their TURN server."""
    instance = Daphne(**coturn.env())
    yield instance
    instance.stop()


@pytest.fixture
def contexts(playwright):
    """Each participant in a Chromium of their own, as on two devices."""
    opened, browsers = [], []

    def open_context(*, media=True, viewport=None):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *FAKE_MEDIA]
        )
        browsers.append(browser)
        context = browser.new_context(
            permissions=["camera", "microphone"] if media else [],
            viewport=viewport or {"width": 1000, "height": 800},
        )
        context.add_init_script(RECORD_CONNECTIONS)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        leave_calls(context)
        context.close()
    for browser in browsers:
        browser.close()


def leave_calls(context) -> None:
    """Hang up the calls still open in `context`, waiting for the page's "leave" to be answered: closed
    with the call on, a page would report it while the test database is being emptied."""
    for page in context.pages:
        hang_up = page.get_by_test_id("hang-up")
        if "/visit/" in page.url and hang_up.count() and hang_up.is_enabled():
            with page.expect_response(lambda answer: answer.url.endswith("/call/events/"), timeout=10_000):
                hang_up.click()


def video_appointment(*, doctor, patient, status=Status.CONFIRMED):
    """A VIDEO appointment of today that is open for its call now (its time a few minutes ago)."""
    now = timezone.localtime()
    at = max(now - datetime.timedelta(minutes=5), now.replace(hour=0, minute=0))
    return AppointmentFactory(
        doctor=doctor, patient=patient, date=now.date(), time=at.time().replace(second=0, microsecond=0),
        mode=Mode.VIDEO, status=status,
    )  # fmt: skip


def sign_in(context, base: str, user, then: str):
    """`user` signs in through /login/ in `context`, then opens `then`; returns the page."""
    page = context.new_page()
    record_frames(page)
    page.goto(f"{base}/login/?next={then}")
    page.fill('input[name="email"]', user.email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}{then}")
    return page


def record_frames(page) -> None:
    """Every frame the page's sockets receive, parsed, as `page.received`."""
    page.received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: page.received.append(json.loads(payload))))


def open_visit(context, base, user, appointment, *, relay=True):
    return sign_in(context, base, user, f"/visit/{appointment.pk}/" + ("?relay=1" if relay else ""))


def state(page):
    return page.get_by_test_id("call-state")


def call_stats(page) -> dict:
    return page.evaluate(CALL_STATS)


def wait_for_frames(page) -> dict:
    """Polls the page's getStats until video frames have been decoded; returns the stats then."""
    page.wait_for_function(f"({CALL_STATS})().then((s) => s && s.frames > 0)", polling=200, timeout=CALL_TIMEOUT)
    return call_stats(page)


def assert_relayed(stats: dict) -> None:
    assert stats["policy"] == "relay"
    assert "relay" in stats["ends"], stats  # the selected pair runs through the TURN server


CALL_LOG = [("join", ""), ("connected", "relay"), ("leave", "")]


def logged_events(appointment) -> set:
    return set(CallEvent.objects.filter(log__appointment=appointment).values_list("user_id", "event", "route"))


def poll(check, timeout: float = 15) -> bool:
    """`check()` until it is true or `timeout` seconds have passed (a write the page makes on its own)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)  # polling the database, bounded by the deadline
    return True


DIAGNOSIS = """
async () => Promise.all(window.__connections.map(async (pc) => {
  const kinds = [];
  (await pc.getStats()).forEach((s) => s.type.endsWith("candidate") && kinds.push(`${s.type}:${s.candidateType}`));
  const servers = pc.getConfiguration().iceServers.map((s) => `${s.urls} ${s.username || ""}`);
  return [pc.connectionState, pc.iceConnectionState, pc.iceGatheringState, pc.signalingState, kinds.join(" "), servers];
}))
"""


def connect_call(doctor_page, patient_page) -> None:
    for page in (doctor_page, patient_page):
        try:
            expect(state(page)).to_have_attribute("data-state", "connected", timeout=CALL_TIMEOUT)
        except AssertionError as failure:
            seen = {name: p.evaluate(DIAGNOSIS) for name, p in (("doctor", doctor_page), ("patient", patient_page))}
            heard = {
                name: [
                    (f["data"]["signal"].get("type"), f["data"]["signal"].get("to", "")[:4])
                    for f in p.received
                    if f["type"] == "call_signal"
                ]
                for name, p in (("doctor", doctor_page), ("patient", patient_page))
            }
            raise AssertionError(f"{failure}\nconnections: {seen}\nsignals heard: {heard}") from None


# 1
@pytest.mark.webrtc_call
def test_doctor_and_patient_see_each_other_through_the_relay_and_hang_up_ends_both(
    visit_server, contexts, doctor, patient
):
    appointment = video_appointment(doctor=doctor, patient=patient)
    doctor_page = open_visit(contexts(), visit_server.url, doctor.user, appointment)
    expect(state(doctor_page)).to_have_attribute("data-state", "waiting")
    expect(doctor_page.get_by_test_id("call-state")).to_contain_text(patient.name)
    patient_page = open_visit(contexts(), visit_server.url, patient, appointment)

    connect_call(doctor_page, patient_page)
    for page in (doctor_page, patient_page):
        assert_relayed(wait_for_frames(page))
        expect(state(page)).to_have_attribute("data-route", "relay")

    # Mute and camera off are told to the other side.
    doctor_page.get_by_test_id("camera-off").click()
    expect(doctor_page.get_by_test_id("camera-off")).to_have_attribute("aria-pressed", "true")
    expect(patient_page.locator('[data-role="peer-note"]')).to_contain_text(doctor.user.name)
    doctor_page.get_by_test_id("camera-off").click()
    expect(patient_page.locator('[data-role="peer-note"]')).to_be_hidden()

    patient_page.get_by_test_id("hang-up").click()
    for page in (patient_page, doctor_page):
        expect(state(page)).to_have_attribute("data-state", "ended")
        expect(page.get_by_test_id("back-to-portal")).to_be_visible()
    # Both cameras are released.
    for page in (patient_page, doctor_page):
        page.wait_for_function("() => window.__connections.every((c) => c.connectionState === 'closed')")
    # The call log has what each page reported: joined, connected through the relay, left.
    expected = {(user.pk, kind, route) for user in (doctor.user, patient) for kind, route in CALL_LOG}
    assert poll(lambda: logged_events(appointment) >= expected), logged_events(appointment)
    assert CallLog.objects.get(appointment=appointment).route == "relay"


# 2
@pytest.mark.webrtc_call
def test_the_patients_socket_cut_mid_call_keeps_the_call_and_a_reload_redials(visit_server, contexts, doctor, patient):
    appointment = video_appointment(doctor=doctor, patient=patient)
    patient_context = contexts()
    sockets = []

    # The patient's socket runs through Playwright, which can cut it as a broken network would.
    def route(ws):
        server = ws.connect_to_server()
        sockets.append((ws, server))

    patient_context.route_web_socket("**/ws/**", route)
    doctor_page = open_visit(contexts(), visit_server.url, doctor.user, appointment)
    patient_page = open_visit(patient_context, visit_server.url, patient, appointment)
    connect_call(doctor_page, patient_page)
    wait_for_frames(patient_page)
    conn = patient_page.get_by_test_id("connection-status")
    expect(conn).to_have_attribute("data-sessions", "1")

    ws, server = sockets[-1]
    server.close(code=4000, reason="cut")  # the server side goes away...
    ws.close(code=4000, reason="cut")  # ...and the page's socket with it
    expect(conn).to_have_attribute("data-sessions", "2")  # reconnected by itself
    expect(conn).to_have_attribute("data-state", "connected")

    # Media over TURN never depended on the socket; the call is (still, or again) up.
    expect(state(patient_page)).to_have_attribute("data-state", "connected", timeout=CALL_TIMEOUT)
    expect(state(doctor_page)).to_have_attribute("data-state", "connected", timeout=CALL_TIMEOUT)
    before = call_stats(patient_page)["frames"]
    patient_page.wait_for_function(
        f"({CALL_STATS})().then((s) => s && s.frames > {before})", polling=200, timeout=CALL_TIMEOUT
    )
    # Signalling goes both ways over the new socket.
    doctor_page.get_by_test_id("mute").click()
    expect(patient_page.locator('[data-role="peer-note"]')).to_contain_text(doctor.user.name)
    patient_page.get_by_test_id("camera-off").click()
    expect(doctor_page.locator('[data-role="peer-note"]')).to_contain_text(patient.name)

    # The patient reloads the page (a new page, a new connection): the doctor's side dials it afresh.
    patient_page.reload()
    connect_call(doctor_page, patient_page)
    wait_for_frames(patient_page)
    patient_page.get_by_test_id("hang-up").click()
    expect(state(doctor_page)).to_have_attribute("data-state", "ended")


# 3
@pytest.mark.webrtc_call
def test_a_third_users_signals_are_refused_and_reach_nobody(visit_server, contexts, doctor, patient):
    from websockets.sync.client import connect

    appointment = video_appointment(doctor=doctor, patient=patient)
    doctor_page = open_visit(contexts(), visit_server.url, doctor.user, appointment)
    patient_page = open_visit(contexts(), visit_server.url, patient, appointment)
    connect_call(doctor_page, patient_page)

    # Another patient may not see the appointment: not found, the page as the signals. Clinic staff
    # may see it but are not in the call: forbidden.
    stranger = UserFactory(email="stranger@example.com")
    stranger_page = sign_in(contexts(), visit_server.url, stranger, "/patient/")
    assert stranger_page.goto(f"{visit_server.url}/visit/{appointment.pk}/").status == 404
    staff = UserFactory(email="staff@example.com", role="ADMIN")

    for user, refusal in ((stranger, "not_found"), (staff, "forbidden")):
        token = visit_server.token(user.email, PASSWORD)
        with connect(f"{visit_server.ws_url}?token={token}", open_timeout=10) as ws:
            assert check_frame(ws.recv(timeout=10))["type"] == "ready"
            for signal in ({"type": "hello", "session": "x"}, {"type": "bye", "session": "x"}):
                data = {"appointment_id": appointment.pk, "signal": signal}
                ws.send(json.dumps({"type": "call_signal", "data": data}))
                frame = check_frame(ws.recv(timeout=10))
                while frame["type"] != "error":
                    frame = check_frame(ws.recv(timeout=10))
                assert (frame["data"]["code"], frame["data"]["request"]) == (refusal, "call_signal")

    # A signal of the doctor's sent after the intruder's is the sync point: it arrives; theirs did not.
    doctor_page.get_by_test_id("mute").click()
    expect(patient_page.locator('[data-role="peer-note"]')).to_be_visible()
    for page, other in ((patient_page, doctor.user), (doctor_page, patient)):
        senders = {f["data"]["from_user_id"] for f in page.received if f["type"] == "call_signal"}
        assert senders == {other.pk}  # nothing from the stranger or the staff member
    for page in (doctor_page, patient_page):
        expect(state(page)).to_have_attribute("data-state", "connected")


# 4
@pytest.mark.webrtc_call
def test_a_refused_camera_says_so_and_try_again_joins_once_allowed(playwright, visit_server, doctor, patient):
    appointment = video_appointment(doctor=doctor, patient=patient)
    # A browser that asks the user (no fake prompt): headless, an ungranted camera is refused, as
    # when the user chooses "Block".
    asking = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream"]
    )
    try:
        context = asking.new_context(viewport={"width": 390, "height": 844})
        page = open_visit(context, visit_server.url, patient, appointment)
        expect(state(page)).to_have_attribute("data-state", "failed")
        expect(state(page)).to_have_attribute("data-reason", "media-denied")
        problem = page.get_by_test_id("media-error")
        expect(problem).to_be_visible()
        expect(problem).to_contain_text("camera or microphone")
        expect(page.get_by_test_id("hang-up")).to_be_disabled()

        context.grant_permissions(["camera", "microphone"], origin=visit_server.url)
        problem.get_by_test_id("retry").click()
        expect(state(page)).to_have_attribute("data-state", "waiting")
        expect(problem).to_be_hidden()
        expect(page.get_by_test_id("hang-up")).to_be_enabled()
    finally:
        for context in asking.contexts:
            leave_calls(context)
        asking.close()


# 5
def test_the_visit_page_is_for_the_appointments_two_people_and_says_when_it_is_not_open(
    visit_server, contexts, doctor, patient
):
    pending = video_appointment(doctor=doctor, patient=patient, status=Status.PENDING)
    page = open_visit(contexts(), visit_server.url, patient, pending)
    expect(state(page)).to_have_attribute("data-state", "failed")
    expect(state(page)).to_have_attribute("data-reason", "closed")
    expect(page.get_by_test_id("media-error")).to_contain_text("not open")


# 6
@pytest.mark.webrtc_call
def test_the_doctor_starts_the_visit_from_the_console_and_the_patient_joins_from_the_portal(
    visit_server, contexts, doctor, patient
):
    appointment = video_appointment(doctor=doctor, patient=patient)
    in_person = AppointmentFactory(doctor=doctor, patient=patient, date=appointment.date)
    doctor_page = sign_in(contexts(), visit_server.url, doctor.user, "/doctor/")
    console_row = doctor_page.locator(f'[data-testid="appointment-row"][data-id="{appointment.pk}"]')
    expect(console_row.get_by_test_id("video-visit")).to_be_visible()
    other_row = doctor_page.locator(f'[data-testid="appointment-row"][data-id="{in_person.pk}"]')
    expect(other_row).to_be_visible()
    expect(other_row.get_by_test_id("start-visit")).to_have_count(0)

    console_row.get_by_test_id("start-visit").click()  # rings the patient, opens the call
    doctor_page.wait_for_url(f"{visit_server.url}/visit/{appointment.pk}/")
    doctor_page.go_back()
    console_row.get_by_test_id("start-visit").click()  # rung a moment ago (429): opens it all the same
    doctor_page.wait_for_url(f"{visit_server.url}/visit/{appointment.pk}/")
    expect(state(doctor_page)).to_have_attribute("data-state", "waiting")

    patient_page = sign_in(contexts(), visit_server.url, patient, "/patient/")
    portal_row = patient_page.locator(f'[data-testid="appointment-row"][data-id="{appointment.pk}"]')
    expect(patient_page.get_by_test_id("notification-badge")).to_be_visible()  # the ring
    expect(
        patient_page.locator(f'[data-testid="appointment-row"][data-id="{in_person.pk}"]').get_by_test_id("join-visit")
    ).to_have_count(0)
    portal_row.get_by_test_id("join-visit").click()
    patient_page.wait_for_url(f"{visit_server.url}/visit/{appointment.pk}/")
    connect_call(doctor_page, patient_page)  # direct or relayed, as ICE finds it
    wait_for_frames(doctor_page)


def test_a_patient_books_a_video_visit_with_the_form(visit_server, contexts, doctor, patient):
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    page = sign_in(contexts(), visit_server.url, patient, "/patient/")
    form = page.get_by_test_id("book-form")
    form.get_by_label("Doctor").select_option(str(doctor.pk))
    form.get_by_label("Date", exact=True).fill(tomorrow)
    expect(form.locator("#book-time option:not([value=''])").first).to_have_attribute("value", "09:00")
    form.get_by_label("Time").select_option("09:00")
    form.get_by_label("Kind of visit").select_option("VIDEO")
    page.get_by_test_id("book-submit").click()
    expect(page.get_by_test_id("book-success")).to_contain_text("09:00")
    booked = Appointment.objects.get(patient=patient, doctor=doctor)
    assert booked.mode == Mode.VIDEO
    booked_row = page.locator(f'[data-testid="appointment-row"][data-id="{booked.pk}"]')
    expect(booked_row.locator('[data-role="mode"]')).to_be_visible()
    expect(booked_row.get_by_test_id("join-visit")).to_be_visible()


# 7
@pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx)")
@pytest.mark.skipif(not settings.REDIS_URL, reason="two nodes relay signals through Redis (REDIS_URL)")
@pytest.mark.webrtc_call
def test_a_call_between_two_nodes_behind_nginx(django_db_setup, coturn, contexts, doctor, patient):
    from tests.test_cluster import collect_static, sockets_on

    static_root = Path(tempfile.mkdtemp(prefix="mc-static-"))
    static_root.chmod(0o755)
    collect_static(static_root)
    env = {
        "TRUSTED_PROXIES": "127.0.0.1",
        "CHANNEL_LAYER_PREFIX": f"visit{uuid.uuid4().hex[:8]}",
        "STATICFILES_MANIFEST": "true",
        "STATIC_ROOT": str(static_root),
        **coturn.env(),
    }
    nodes, nginx = [], None
    try:
        nodes = [Daphne(**env), Daphne(**env)]
        nginx = Nginx([node.port for node in nodes], static_root=static_root)
        appointment = video_appointment(doctor=doctor, patient=patient)
        # The patient through nginx; the doctor on the node the patient's socket is not on.
        patient_page = open_visit(contexts(), nginx.url, patient, appointment)
        expect(patient_page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
        counts = sockets_on(nodes)
        assert sorted(counts) == [0, 1], counts
        other = nodes[counts.index(0)]
        doctor_page = open_visit(contexts(), other.url, doctor.user, appointment)
        connect_call(doctor_page, patient_page)
        assert sockets_on(nodes) == [1, 1]
        for page in (doctor_page, patient_page):
            assert_relayed(wait_for_frames(page))
        doctor_page.get_by_test_id("hang-up").click()
        expect(state(patient_page)).to_have_attribute("data-state", "ended")
    finally:
        if nginx is not None:
            nginx.stop()
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()
        shutil.rmtree(static_root, ignore_errors=True)
