"""A reminder reaches the open patient portal: daphne and `manage.py run_worker` as real processes, in Chromium."""

import datetime
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from appointments.reminders import appointment_start
from appointments.services import appointment_book
from notifications import presence
from notifications.models import Delivery, Notification
from tests import live
from tests.live import BROWSER_TEST
from tests.test_portals_browser import browser, new_context, portal  # noqa: F401 (fixtures)

pytestmark = BROWSER_TEST


@pytest.fixture
def worker():
    with live.worker_process() as process:
        yield process


def test_a_reminder_arrives_on_the_open_portal_from_the_worker(server, portal, worker, patient, doctor, settings):  # noqa: F811
    page = portal(patient)
    # An appointment at a whole minute over a minute ahead, with its one reminder due 3 s from now.
    due = timezone.now() + datetime.timedelta(seconds=3)
    start = timezone.localtime(due + datetime.timedelta(minutes=2)).replace(second=0, microsecond=0)
    settings.REMINDER_OFFSETS = [int((start - due).total_seconds())]
    appointment = appointment_book(actor=patient, doctor=doctor, date=start.date(), time=start.time(), patient=patient)
    assert appointment_start(appointment) == start

    page.get_by_test_id("notification-bell").click()
    reminder = page.get_by_test_id("notification-item").filter(has_text="Appointment Reminder")
    expect(reminder).to_have_count(1, timeout=20_000)
    expect(page.get_by_test_id("notification-badge")).to_have_text("2")  # the booking's and the reminder

    [stored] = Notification.objects.filter(user=patient, type="APPOINTMENT_REMINDER")
    assert stored.created_at >= due
    [delivery] = Delivery.objects.filter(notification=stored)  # its email, made with it
    if not settings.REDIS_URL:
        return  # the worker, another process, cannot see the page: it sends the email
    # With Redis the worker sees the open page's entry and holds the email until a heartbeat of the
    # page's server after the reminder would show (two heartbeats on), or drops it if one has already.
    deadline = time.monotonic() + 10
    while delivery.state == "PENDING" and delivery.due_at <= stored.created_at and time.monotonic() < deadline:
        time.sleep(0.2)  # polling for the worker's first look, bounded by the deadline
        delivery.refresh_from_db()
    held = datetime.timedelta(seconds=2 * presence.HEARTBEAT_SECONDS)
    assert delivery.state == "SEEN" or (delivery.state == "PENDING" and delivery.due_at >= stored.created_at + held)
