"""The patient and doctor portals in Chromium, against real daphne processes.

Every check is what a user sees on the page; every wait is Playwright's auto-waiting
`expect` with a timeout.
"""

import contextlib
import datetime
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.tests.factories import PASSWORD, UserFactory
from appointments.models import Appointment
from appointments.services import appointment_book
from notifications.models import Notification
from queues.services import queue_call_next
from queues.tests.factories import BoardFactory
from tests.live import BROWSER_TEST, CHROMIUM, CHROMIUM_ARGS, Daphne, free_port

MAX_PAGE_WEIGHT = 100_000  # bytes of JS + CSS per portal page, uncompressed

pytestmark = BROWSER_TEST

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop in this thread, which Django takes for an async
    # context; the ORM calls in these tests are still plain, one-at-a-time synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser):
    """`new_context(**options)` → a new browser context (a browser of its own), closed at the end of the test."""
    contexts = []

    def open_context(**options):
        context = browser.new_context(**options)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def portal(new_context, server):
    """`portal(user)` signs `user` in through /login/ in a new browser context and returns the open page."""

    def open_page(user, *, base: str | None = None, context=None, viewport=None):
        base = base or server.url
        home = "/doctor/" if user.role == "DOCTOR" else "/patient/"
        if context is None:
            context = new_context(viewport=viewport or {"width": 1100, "height": 850})
            page = context.new_page()
            record_frames(page)
            page.goto(f"{base}/login/")
            page.fill('input[name="email"]', user.email)
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_url(f"{base}{home}")
        else:  # another tab of the same signed-in browser
            page = context.new_page()
            record_frames(page)
            page.goto(f"{base}{home}")
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
        return page

    return open_page


def record_frames(page) -> None:
    """Keep every frame the page's sockets receive, as `page.received` (parsed), to check what the
    server sent, not only what the page chose to show; and the URLs it requests, as `page.requested`."""
    page.received = []
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))

    def watch(ws):
        ws.on("framereceived", lambda payload: page.received.append(json.loads(payload)))

    page.on("websocket", watch)


def today() -> datetime.date:
    return timezone.localdate()


def book(*, doctor, patient, at: str, day: datetime.date | None = None) -> Appointment:
    """A booking made by the doctor through the service, in this process.

    It runs in a worker thread: the push after commit needs a thread without Playwright's
    event loop (a push that cannot be made is still replayed from the stored events).
    """

    def run():
        try:
            return appointment_book(
                actor=doctor.user,
                doctor=doctor,
                patient=patient,
                date=day or today(),
                time=datetime.time.fromisoformat(at),
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def book_over_http(server, *, doctor, patient, at: str) -> dict:
    """A booking made by the doctor through the API with their JWT."""
    status, body = server.request(
        "POST",
        "/api/appointments/",
        {"doctor": doctor.pk, "patient": patient.pk, "date": today().isoformat(), "time": at},
        token=server.token(doctor.user.email, PASSWORD),
    )
    assert status == 201, body
    return body


def row(page, appointment_id: int):
    return page.locator(f'[data-testid="appointment-row"][data-id="{appointment_id}"]')


def page_weight(page) -> int:
    """Bytes of the scripts, style sheets and fonts the page loaded, uncompressed."""
    page.evaluate("document.fonts.ready.then(() => true)")
    return page.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter(e => e.initiatorType === 'script' || e.initiatorType === 'link'
                         || /\\.(js|css|woff2)$/.test(new URL(e.name).pathname))
            .reduce((sum, e) => sum + e.decodedBodySize, 0)"""
    )


# 1
def test_a_booking_by_the_doctor_shows_up_live_on_the_patients_page(server, portal, patient, doctor):
    page = portal(patient)
    badge = page.get_by_test_id("notification-badge")
    expect(badge).to_be_hidden()
    expect(page.get_by_test_id("appointment-row")).to_have_count(0)
    assert 0 < page_weight(page) < MAX_PAGE_WEIGHT

    first = book_over_http(server, doctor=doctor, patient=patient, at="10:00")
    expect(row(page, first["id"])).to_have_attribute("data-status", "CONFIRMED")
    expect(row(page, first["id"])).to_contain_text(doctor.user.name)
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")

    second = book_over_http(server, doctor=doctor, patient=patient, at="10:15")
    expect(row(page, second["id"])).to_be_visible()
    expect(badge).to_have_text("2")
    page.get_by_test_id("notification-bell").click()
    items = page.get_by_test_id("notification-item")
    expect(items).to_have_count(2)
    expect(items.first).to_have_attribute("data-read", "false")
    expect(page.get_by_test_id("appointment-row")).to_have_count(2)
    # The badge followed the unread_count of the events: the page never asked for the count.
    assert [url for url in page.requested if "unread-count" in url] == []


# 2
def test_reading_a_notification_in_one_tab_updates_the_other(portal, patient, doctor):
    book(doctor=doctor, patient=patient, at="09:00")
    book(doctor=doctor, patient=patient, at="09:15")
    notes = list(Notification.objects.filter(user=patient).order_by("id"))
    tab_a = portal(patient)
    tab_b = portal(patient, context=tab_a.context)
    for tab in (tab_a, tab_b):
        expect(tab.get_by_test_id("notification-badge")).to_have_text("2")

    tab_a.get_by_test_id("notification-bell").click()
    tab_a.locator(f'[data-testid="notification-item"][data-id="{notes[0].pk}"]').click()
    read_in_b = tab_b.locator(f'[data-testid="notification-item"][data-id="{notes[0].pk}"]')
    expect(read_in_b).to_have_attribute("data-read", "true")
    expect(tab_b.get_by_test_id("notification-badge")).to_have_text("1")
    expect(tab_a.get_by_test_id("notification-badge")).to_have_text("1")

    tab_a.get_by_test_id("mark-all-read").click()
    expect(tab_b.get_by_test_id("notification-badge")).to_be_hidden()
    for item in tab_b.get_by_test_id("notification-item").all():
        expect(item).to_have_attribute("data-read", "true")


# 3
def test_a_patient_cancels_and_both_pages_show_it(portal, patient, doctor):
    appointment = book(doctor=doctor, patient=patient, at="11:00")
    patient_page = portal(patient)
    doctor_page = portal(doctor.user)
    expect(row(doctor_page, appointment.pk)).to_have_attribute("data-status", "CONFIRMED")

    dialogs = []
    patient_page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row(patient_page, appointment.pk).get_by_test_id("cancel-appointment").click()

    expect(row(patient_page, appointment.pk)).to_have_attribute("data-status", "CANCELLED")
    expect(row(patient_page, appointment.pk).get_by_test_id("cancel-appointment")).to_have_count(0)
    expect(row(doctor_page, appointment.pk)).to_have_attribute("data-status", "CANCELLED")
    assert dialogs and doctor.user.name in dialogs[0]


# 4
def test_the_queue_modal_follows_the_doctor_until_it_is_closed(server, portal, patient, patient2, doctor):
    book(doctor=doctor, patient=patient2, at="09:00")
    book(doctor=doctor, patient=UserFactory(), at="09:15")
    mine = book(doctor=doctor, patient=patient, at="09:30")
    patient_page = portal(patient)
    doctor_page = portal(doctor.user)

    row(patient_page, mine.pk).get_by_test_id("open-queue").click()
    modal = patient_page.get_by_test_id("queue-modal")
    expect(modal).to_be_visible()
    expect(modal.get_by_test_id("queue-mine")).to_have_text("3")
    expect(modal.get_by_test_id("queue-current")).to_have_text("0")

    doctor_page.get_by_test_id("queue-current-input").fill("1")
    doctor_page.get_by_test_id("queue-wait-input").fill("7")
    doctor_page.get_by_test_id("queue-save").click()
    expect(modal.get_by_test_id("queue-current")).to_have_text("1")
    expect(modal.get_by_test_id("queue-ahead")).to_have_text("1")
    expect(modal.get_by_test_id("queue-wait")).to_contain_text("7")

    modal.get_by_test_id("close-queue").click()
    expect(modal).to_be_hidden()
    closed_at = len(patient_page.received)
    doctor_page.get_by_test_id("queue-current-input").fill("2")
    doctor_page.get_by_test_id("queue-save").click()
    expect(doctor_page.get_by_test_id("queue-current")).to_have_text("2")
    # Frames reach a socket in order: once this later booking shows, the queue update has had its chance.
    later = book_over_http(server, doctor=doctor, patient=patient, at="12:00")
    expect(row(patient_page, later["id"])).to_be_visible()
    expect(modal.get_by_test_id("queue-current")).to_have_text("1")
    # The server stopped sending that queue (leave_queue), not merely the page ignoring it.
    after = [f["type"] for f in patient_page.received[closed_at:]]
    assert "appointment_updated" in after and "queue_updated" not in after

    row(patient_page, mine.pk).get_by_test_id("open-queue").click()
    expect(modal.get_by_test_id("queue-current")).to_have_text("2")


# 5
def test_three_patients_see_one_queue_update(server, portal, doctor):
    patients = [UserFactory(name=f"Patient {n}") for n in range(3)]
    booked = [book(doctor=doctor, patient=p, at=f"1{n}:00") for n, p in enumerate(patients)]
    pages = [portal(p) for p in patients]
    for page, appointment in zip(pages, booked, strict=True):
        row(page, appointment.pk).get_by_test_id("open-queue").click()
        expect(page.get_by_test_id("queue-mine")).to_have_text(str(appointment.queue_number))
        expect(page.get_by_test_id("queue-current")).to_have_text("0")

    status, body = server.request(
        "POST",
        f"/api/queues/{doctor.pk}/",
        {"current_queue": 2, "estimated_wait": 10},
        token=server.token(doctor.user.email, PASSWORD),
    )
    assert status == 200, body
    for page in pages:
        expect(page.get_by_test_id("queue-current")).to_have_text("2")
    expect(pages[2].get_by_test_id("queue-ahead")).to_have_text("0")
    expect(pages[2].get_by_test_id("queue-wait")).to_contain_text("10")


@contextlib.contextmanager
def through_a_cut(open_page, while_down):
    """`open_page(base_url)` on a server of its own, which is killed; `while_down()` runs with no server
    up, then another starts on the same port (where the page's retries go). Yields (page, the second
    server, what `while_down` returned) once the page is connected again; stops the server after."""
    port = free_port()
    first = Daphne(port=port)
    try:
        page = open_page(first.url)
        status = page.get_by_test_id("connection-status")
        first.kill()
        expect(status).to_have_attribute("data-state", "reconnecting")
        changed = while_down()
    finally:
        first.stop()

    second = Daphne(port=port)
    try:
        expect(status).to_have_attribute("data-state", "connected", timeout=45_000)
        yield page, second, changed
    finally:
        second.stop()


# 6
def test_a_dropped_connection_comes_back_and_catches_up_exactly_once(portal, patient, doctor):
    with through_a_cut(
        lambda base: portal(patient, base=base), lambda: book(doctor=doctor, patient=patient, at="13:00")
    ) as (page, second, missed):
        status = page.get_by_test_id("connection-status")
        note = Notification.objects.get(user=patient, related_id=missed.pk)
        expect(row(page, missed.pk)).to_have_count(1)
        expect(page.get_by_test_id("notification-badge")).to_have_text("1")
        page.get_by_test_id("notification-bell").click()
        expect(page.locator(f'[data-testid="notification-item"][data-id="{note.pk}"]')).to_have_count(1)

        # A later live event is the sync point: nothing replayed twice arrives after it.
        later = book_over_http(second, doctor=doctor, patient=patient, at="13:15")
        expect(row(page, later["id"])).to_be_visible()
        expect(page.get_by_test_id("notification-badge")).to_have_text("2")
        expect(row(page, missed.pk)).to_have_count(1)
        expect(page.get_by_test_id("appointment-row")).to_have_count(2)
        expect(page.get_by_test_id("notification-item")).to_have_count(2)

        # The browser going offline and back online.
        page.context.set_offline(True)
        expect(status).to_have_attribute("data-state", "offline")
        page.context.set_offline(False)
        expect(status).to_have_attribute("data-state", "connected")


# 7
def test_call_next_on_the_doctor_console_reaches_the_patients_queue(portal, patient, patient2, doctor):
    first = book(doctor=doctor, patient=patient2, at="09:00")
    mine = book(doctor=doctor, patient=patient, at="09:15")
    patient_page = portal(patient)
    doctor_page = portal(doctor.user, viewport={"width": 360, "height": 740})
    assert 0 < page_weight(doctor_page) < MAX_PAGE_WEIGHT

    row(patient_page, mine.pk).get_by_test_id("open-queue").click()
    current = patient_page.get_by_test_id("queue-current")
    expect(current).to_have_text("0")

    doctor_page.get_by_test_id("call-next").click()
    expect(doctor_page.get_by_test_id("queue-current")).to_have_text("1")
    expect(current).to_have_text("1")
    expect(patient_page.get_by_test_id("queue-ahead")).to_have_text("0")

    row(doctor_page, first.pk).get_by_test_id("complete-appointment").click()
    expect(row(doctor_page, first.pk)).to_have_attribute("data-status", "COMPLETED")
    # No status move is left on a completed row (its prescription and documents buttons stay).
    expect(row(doctor_page, first.pk).locator('button[data-testid$="-appointment"]')).to_have_count(0)
    doctor_page.get_by_test_id("call-next").click()
    expect(current).to_have_text("2")
    expect(patient_page.get_by_test_id("queue-modal")).to_contain_text("your turn")

    # Nobody left: the console says so.
    doctor_page.get_by_test_id("call-next").click()
    expect(doctor_page.locator('[data-role="queue-msg"]')).to_contain_text("#2")


# 7b
def test_bookings_cancellations_and_notifications_are_announced_once(server, portal, patient, doctor):
    doctor_page = portal(doctor.user)
    patient_page = portal(patient)
    for page in (doctor_page, patient_page):
        # One live region on the page (alerts aside): nothing is read out twice.
        assert page.locator("[aria-live], [role=status], [role=log], [role=marquee]").count() == 1
    doctor_says = doctor_page.get_by_test_id("announcer")
    patient_says = patient_page.get_by_test_id("announcer")

    booked = book_over_http(server, doctor=doctor, patient=patient, at="10:00")
    expect(doctor_says).to_contain_text(f"New appointment: {patient.name} at 10:00, queue number 1.")
    expect(patient_says).to_contain_text("New notification: Appointment Confirmed.")
    expect(patient_says).to_contain_text(f"New appointment with {doctor.user.name}")

    status, _ = server.request(
        "DELETE", f"/api/appointments/{booked['id']}/", token=server.token(patient.email, PASSWORD)
    )
    assert status == 200
    expect(doctor_says).to_contain_text(f"Cancelled: {patient.name} at 10:00.")
    expect(patient_says).to_contain_text(f"Your appointment with {doctor.user.name}")
    expect(patient_says).to_contain_text("was cancelled")


# 7c
def test_the_notification_panel_takes_the_focus_and_escape_gives_it_back(portal, patient, doctor):
    book(doctor=doctor, patient=patient, at="09:00")
    page = portal(patient)
    bell = page.get_by_test_id("notification-bell")
    expect(page.get_by_test_id("notification-item")).to_have_count(1)

    bell.click()
    expect(page.get_by_test_id("notification-item").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#notif-panel")).to_be_hidden()
    expect(bell).to_be_focused()


# 7d
def test_in_bangla_numbers_and_times_are_bangla_and_the_webfont_loads(server, portal, patient, doctor):
    book(doctor=doctor, patient=UserFactory(), at="09:00")
    mine = book(doctor=doctor, patient=patient, at="10:15")
    patient.language = "bn"
    patient.save(update_fields=["language"])
    page = portal(patient)

    mine_row = row(page, mine.pk)
    expect(mine_row).to_contain_text("সিরিয়াল #২")
    expect(mine_row).to_contain_text("১০:১৫")
    expect(page.get_by_test_id("notification-badge")).to_have_text("১")
    mine_row.get_by_test_id("open-queue").click()
    expect(page.get_by_test_id("queue-mine")).to_have_text("২")
    expect(page.get_by_test_id("queue-current")).to_have_text("০")
    expect(page.get_by_test_id("queue-ahead")).to_have_text("১")
    assert not re.search(r"[0-9]", page.get_by_test_id("queue-modal").inner_text())

    # The self-hosted font, not the machine's: loaded, and it is what draws the Bengali letters.
    faces = page.evaluate(
        """async () => { await document.fonts.ready;
            return [...document.fonts].filter(f => f.family.replace(/"/g, '') === 'MC Bengali').map(f => f.status); }"""
    )
    assert faces == ["loaded"]
    assert page.evaluate("document.fonts.check('16px \"MC Bengali\"', 'রোগীর পোর্টাল')")
    fonts = page.evaluate("performance.getEntriesByType('resource').map(e => e.name).filter(n => n.endsWith('.woff2'))")
    assert [name.split("/static/")[1] for name in fonts] == ["fonts/noto-sans-bengali-subset.woff2"]
    assert 0 < page_weight(page) < MAX_PAGE_WEIGHT


# 7e
def test_the_doctors_console_turns_to_the_new_day_at_the_clinics_midnight(portal, patient, patient2, doctor):
    tonight = book(doctor=doctor, patient=patient, at="09:00")
    tomorrow = book(doctor=doctor, patient=patient2, at="09:30", day=today() + datetime.timedelta(days=1))
    page = portal(doctor.user)
    page.clock.install()  # the page's clock, flowing as the real one, until the jump below
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(row(page, tonight.pk)).to_be_visible()
    expect(row(page, tomorrow.pk)).to_have_count(0)
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    jump_past_the_clinics_midnight(page)  # the console is left open overnight

    expect(row(page, tomorrow.pk)).to_be_visible()
    expect(row(page, tonight.pk)).to_have_count(0)
    assert any(f"date={(today() + datetime.timedelta(days=1)).isoformat()}" in url for url in requests)


def jump_past_the_clinics_midnight(page) -> datetime.date:
    """Moves the page's clock (installed) a minute past the clinic's next midnight; returns that day."""
    now = timezone.localtime()
    midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), now.tzinfo)
    page.clock.fast_forward(int((midnight - now).total_seconds() * 1000) + 60_000)
    return midnight.date()


# 7f
def test_the_patients_page_turns_to_the_new_day_at_the_clinics_midnight(portal, patient, doctor):
    tomorrow = book(doctor=doctor, patient=patient, at="09:30", day=today() + datetime.timedelta(days=1))
    page = portal(patient)
    page.clock.install()
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(row(page, tomorrow.pk)).to_be_visible()
    expect(row(page, tomorrow.pk).get_by_test_id("open-queue")).to_have_count(0)  # not today: no queue yet

    day = jump_past_the_clinics_midnight(page)

    expect(row(page, tomorrow.pk).get_by_test_id("open-queue")).to_be_visible()
    expect(page.locator("#book-date")).to_have_attribute("min", day.isoformat())
    expect(page.locator("#book-date")).to_have_value(day.isoformat())


# 8
def test_the_portal_switches_to_bangla(server, portal, patient, doctor):
    page = portal(patient)
    expect(page.locator("h1")).to_have_text("Patient portal")
    sound = page.get_by_test_id("sound-toggle")
    expect(sound).to_have_attribute("aria-pressed", "true")
    sound.click()  # turned off; the choice outlives the reload below
    expect(sound).to_have_attribute("aria-pressed", "false")

    page.get_by_test_id("language-bn").click()
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.locator("h1")).to_have_text("রোগীর পোর্টাল")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("connection-status")).to_have_text("সংযুক্ত")
    expect(sound).to_have_attribute("aria-pressed", "false")

    booked = book_over_http(server, doctor=doctor, patient=patient, at="15:00")
    expect(row(page, booked["id"])).to_contain_text("নিশ্চিত")
    page.get_by_test_id("notification-bell").click()
    expect(page.get_by_test_id("notification-item").first).to_contain_text("অ্যাপয়েন্টমেন্ট নিশ্চিত হয়েছে")

    page.get_by_test_id("language-en").click()
    expect(page.locator("h1")).to_have_text("Patient portal")


def test_booking_through_the_form_with_field_errors_and_a_taken_slot(server, portal, patient, patient2, doctor):
    page = portal(patient)
    tomorrow = (today() + datetime.timedelta(days=1)).isoformat()
    form = page.get_by_test_id("book-form")
    page.get_by_test_id("book-submit").click()
    expect(form.locator('[data-error-for="doctor"]')).to_have_text("Please choose a doctor.")
    expect(form.get_by_label("Doctor")).to_have_attribute("aria-invalid", "true")

    form.get_by_label("Doctor").select_option(str(doctor.pk))
    form.get_by_label("Date", exact=True).fill(tomorrow)
    times = form.locator("#book-time option:not([value=''])")
    expect(times.first).to_have_attribute("value", "09:00")
    form.get_by_label("Time").select_option("09:00")
    form.get_by_label("Reason for the visit (optional)").fill("Check-up")
    page.get_by_test_id("book-submit").click()
    expect(page.get_by_test_id("book-success")).to_contain_text("09:00")
    booked = Appointment.objects.get(patient=patient, time=datetime.time(9, 0))
    expect(row(page, booked.pk)).to_have_attribute("data-status", "CONFIRMED")
    # The time just booked is no longer offered.
    expect(form.locator('#book-time option[value="09:00"]')).to_have_count(0)

    form.get_by_label("Time").select_option("09:15")
    book(doctor=doctor, patient=patient2, at="09:15", day=today() + datetime.timedelta(days=1))
    page.get_by_test_id("book-submit").click()
    expect(page.get_by_test_id("book-error")).to_contain_text("just taken")

    yesterday = (today() - datetime.timedelta(days=1)).isoformat()
    form.get_by_label("Date", exact=True).fill(yesterday)
    form.get_by_label("Time").select_option("10:00")
    page.get_by_test_id("book-submit").click()
    expect(form.locator('[data-error-for="date"]')).to_contain_text("past")
    expect(form.get_by_label("Date", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("appointment-row")).to_have_count(1)


def test_when_the_token_expires_the_page_takes_a_new_one_and_stays_live(portal, patient, doctor):
    short = Daphne(ACCESS_TOKEN_SECONDS=4)
    try:
        page = portal(patient, base=short.url)
        status = page.get_by_test_id("connection-status")
        expect(status).to_have_attribute("data-state", "connected")
        # The server closes the socket with 4401 when its token runs out; the page comes back on its own.
        expect(status).to_have_attribute("data-sessions", re.compile(r"^([2-9]|\d{2,})$"), timeout=20_000)
        expect(status).to_have_attribute("data-state", "connected")
        booked = book_over_http(short, doctor=doctor, patient=patient, at="14:30")
        expect(row(page, booked["id"])).to_be_visible()
    finally:
        short.stop()


def test_a_page_displaced_by_an_eleventh_socket_waits_for_the_user_then_resyncs(portal, patient, doctor):
    from contextlib import ExitStack

    from websockets.sync.client import connect

    # A server of its own that replays at most 2 events: more missed than that means `resync`.
    own = Daphne(WS_REPLAY_MAX=2)
    others = ExitStack()
    try:
        page = portal(patient, base=own.url)
        status = page.get_by_test_id("connection-status")
        access = own.token(patient.email, PASSWORD)
        for _ in range(10):  # ten more sockets of the same patient: the page's, the oldest, goes
            others.enter_context(connect(f"{own.ws_url}?token={access}", open_timeout=10))
        expect(status).to_have_attribute("data-state", "disconnected")
        expect(status).to_contain_text("tap to reconnect")

        # Missed while displaced: two bookings, four events (more than the server replays).
        missed = [book_over_http(own, doctor=doctor, patient=patient, at=at) for at in ("14:00", "14:15")]
        expect(status).to_have_attribute("data-state", "disconnected")  # no reconnect on its own
        assert page.get_by_test_id("connection-status").get_attribute("data-sessions") == "1"

        page.locator("main").click(position={"x": 5, "y": 5})  # the user comes back to the page
        expect(status).to_have_attribute("data-state", "connected")
        for appointment in missed:  # reloaded over REST after `resync`
            expect(row(page, appointment["id"])).to_have_count(1)
        expect(page.get_by_test_id("notification-badge")).to_have_text("2")
        later = book_over_http(own, doctor=doctor, patient=patient, at="14:30")
        expect(row(page, later["id"])).to_be_visible()  # live again, from the id resync gave
        expect(page.get_by_test_id("notification-badge")).to_have_text("3")
        expect(page.get_by_test_id("appointment-row")).to_have_count(3)
    finally:
        others.close()
        own.stop()


def test_a_new_patient_signs_up_lands_live_on_their_page_and_logs_out_with_the_button(new_context, server):
    page = new_context(viewport={"width": 1100, "height": 850}).new_page()
    page.goto(f"{server.url}/login/")
    page.get_by_test_id("signup-link").click()
    page.get_by_label("Full name").fill("Browser Patient")
    page.get_by_label("Email").fill("browser.patient@example.com")
    page.get_by_label("Password", exact=True).fill("a-G00d-passphrase")
    page.get_by_label("Password again").fill("a-G00d-passphrase")
    page.click('button[type="submit"]')
    page.wait_for_url(f"{server.url}/patient/")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

    page.get_by_test_id("logout").click()  # a form POST with the CSRF token, no script
    page.wait_for_url(f"{server.url}/login/")
    page.goto(f"{server.url}/patient/")
    page.wait_for_url(re.compile(r"/login/"))


# The waiting-room display board


def in_thread(function, **kwargs):
    """A service call in a worker thread (as `book`): its push after commit needs a thread of its own."""

    def run():
        try:
            return function(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def call_next(doctor):
    """The doctor calls the next number in this process: only while no server is up (a server's sockets
    would not hear of it without Redis: this process's channel layer is not the server's)."""
    return in_thread(queue_call_next, actor=doctor.user, doctor=doctor)


def call_next_over_http(server, doctor) -> dict:
    """The doctor calls the next number through the API with their JWT, as the console's button does."""
    token = server.token(doctor.user.email, PASSWORD)
    status, body = server.request("POST", f"/api/queues/{doctor.pk}/next/", token=token)
    assert status == 200, body
    return body


def staff_admin(new_context, base: str):
    """A staff member signed in to the admin of the server at `base`, in a browser of their own."""
    staff = UserFactory(role="ADMIN", is_staff=True, is_superuser=True)
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/login/")
    page.fill('input[name="email"]', staff.email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/admin/")
    return page


@pytest.fixture
def board_page(new_context, server):
    """`board_page(board, query="")` opens the board on a TV-sized screen, connected."""

    def open_page(board, *, query: str = "", base: str | None = None):
        page = new_context(viewport={"width": 1920, "height": 1080}).new_page()
        page.goto(f"{base or server.url}/board/{board.token}/{query}")
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
        return page

    return open_page


def board_queue(page, doctor):
    return page.locator(f'[data-testid="board-queue"][data-doctor-id="{doctor.pk}"]')


def test_the_board_follows_the_doctors_call_next_live_and_names_no_patient(
    portal, board_page, patient, patient2, doctor, doctor2
):
    for n, who in enumerate([patient, patient2, UserFactory(name="Third Patient"), UserFactory(name="Fourth Patient")]):
        book(doctor=doctor, patient=who, at=f"09:{n * 15:02d}")
    board = board_page(BoardFactory(doctors=[doctor, doctor2]))
    mine = board_queue(board, doctor)
    expect(board.get_by_test_id("board-queue")).to_have_count(2)
    expect(mine.get_by_test_id("board-current")).to_have_text("0")
    expect(mine.get_by_test_id("board-next").locator("li")).to_have_text(["1", "2", "3"])
    expect(board_queue(board, doctor2).get_by_test_id("board-next")).to_contain_text("No one waiting")
    expect(board.get_by_test_id("board-clock")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    assert 0 < page_weight(board) < MAX_PAGE_WEIGHT

    doctor_page = portal(doctor.user)
    doctor_page.get_by_test_id("call-next").click()

    expect(mine.get_by_test_id("board-current")).to_have_text("1")
    expect(mine.get_by_test_id("board-next").locator("li")).to_have_text(["2", "3", "4"])
    expect(board.get_by_test_id("board-announcement")).to_be_visible()
    expect(board.get_by_test_id("board-announcement")).to_contain_text("Number 1")
    expect(board.get_by_test_id("board-announcement")).to_contain_text(doctor.user.name)
    text = board.locator("body").inner_text()
    for name in (patient.name, patient2.name, "Third Patient", "Fourth Patient"):
        assert name not in text


def test_the_board_in_bangla_shows_bangla_numerals(server, board_page, patient, patient2, doctor):
    book(doctor=doctor, patient=patient, at="09:00")
    book(doctor=doctor, patient=patient2, at="09:15")
    board = board_page(BoardFactory(doctors=[doctor]), query="?lang=bn")
    mine = board_queue(board, doctor)
    expect(board.locator("html")).to_have_attribute("lang", "bn")
    expect(mine.get_by_test_id("board-current")).to_have_text("০")
    expect(mine.get_by_test_id("board-next").locator("li")).to_have_text(["১", "২"])
    expect(board.get_by_test_id("board-clock")).to_have_text(re.compile(r"^[০-৯]{2}:[০-৯]{2}$"))

    call_next_over_http(server, doctor)
    expect(mine.get_by_test_id("board-current")).to_have_text("১")
    expect(mine.get_by_test_id("board-next").locator("li")).to_have_text(["২"])
    expect(board.get_by_test_id("board-announcement")).to_contain_text("১")


def test_the_board_comes_back_after_a_cut_and_shows_what_changed_meanwhile(board_page, patient, patient2, doctor):
    book(doctor=doctor, patient=patient, at="09:00")
    book(doctor=doctor, patient=patient2, at="09:15")
    board_row = BoardFactory(doctors=[doctor])
    with through_a_cut(lambda base: board_page(board_row, base=base), lambda: call_next(doctor)) as (board, second, _):
        status = board.get_by_test_id("connection-status")
        expect(board_queue(board, doctor).get_by_test_id("board-current")).to_have_text("1")
        expect(board_queue(board, doctor).get_by_test_id("board-next").locator("li")).to_have_text(["2"])

        board.context.set_offline(True)
        expect(status).to_have_attribute("data-state", "offline")
        board.context.set_offline(False)
        expect(status).to_have_attribute("data-state", "connected")
        call_next_over_http(second, doctor)
        expect(board_queue(board, doctor).get_by_test_id("board-current")).to_have_text("2")


def test_a_board_shows_a_new_doctor_when_staff_add_one_and_says_so_when_its_token_is_rotated(
    server, new_context, board_page, doctor, doctor2
):
    board_row = BoardFactory(doctors=[doctor])
    board = board_page(board_row)
    expect(board.get_by_test_id("board-queue")).to_have_count(1)

    # Staff add the doctor in the admin, as they would: the server that saves it closes the board's sockets.
    admin = staff_admin(new_context, server.url)
    admin.goto(f"{server.url}/admin/queues/board/{board_row.pk}/change/")
    admin.select_option("#id_doctors_from", str(doctor2.pk))
    admin.click("#id_doctors_add")
    admin.click('input[name="_continue"]')
    expect(admin.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(board.get_by_test_id("board-queue")).to_have_count(2)
    expect(board_queue(board, doctor2)).to_contain_text(doctor2.user.name)
    expect(board.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

    admin.get_by_test_id("rotate-token").click()
    expect(admin.locator(".messagelist")).to_contain_text("new token")
    expect(board.get_by_test_id("board-missing")).to_contain_text("link has changed")
