"""The portals on a phone (390 × 844), in Chromium against a real daphne: the header's menu, "My
appointments" in date order with past and cancelled ones folded away and the next visit's queue,
the settings page, and "Get alerts on this phone" with the devices that get alerts.
"""

import base64
import datetime
import json
import os
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from appointments.models import Appointment, Status
from tests.live import BROWSER_TEST
from tests.test_portals_browser import (  # noqa: F401  (fixtures)
    MAX_PAGE_WEIGHT,
    book,
    book_over_http,
    browser,
    new_context,
    page_weight,
    portal,
    row,
)

pytestmark = BROWSER_TEST

expect.set_options(timeout=15_000)
PHONE = {"width": 390, "height": 844}


def today() -> datetime.date:
    return timezone.localdate()


def upcoming_ids(page) -> list[int]:
    rows = page.get_by_test_id("appointment-list").get_by_test_id("appointment-row")
    return [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.id)")]


def past_ids(page) -> list[int]:
    rows = page.get_by_test_id("past-appointment-list").get_by_test_id("appointment-row")
    return [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.id)")]


def test_on_a_phone_the_header_keeps_the_essentials_and_the_rest_is_in_a_menu(portal, patient):  # noqa: F811
    page = portal(patient, viewport=PHONE)
    header = page.locator("header.topbar")
    for hook in ("notification-bell", "connection-status", "menu-toggle"):
        expect(header.get_by_test_id(hook)).to_be_visible()
    # One row: the header no longer takes a fifth of the screen.
    assert header.bounding_box()["height"] <= 72
    menu = page.get_by_test_id("menu-toggle")
    logout = page.get_by_test_id("logout")
    expect(logout).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")

    # A disclosure: a tap (no hover) opens it; every item is a thumb-sized target.
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    items = ["language-en", "language-bn", "settings-link", "change-password", "sound-toggle", "logout"]
    for hook in items:
        target = page.get_by_test_id(hook)
        expect(target).to_be_visible()
        assert target.bounding_box()["height"] >= 44, hook
    for hook in ("notification-bell", "menu-toggle"):
        box = page.get_by_test_id(hook).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, hook

    # The keyboard: Tab goes from the button into the menu; Escape closes it and gives the focus back.
    menu.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("language-en")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    expect(logout).to_be_hidden()

    # A tap elsewhere closes it too; from the menu, the settings page.
    menu.click()
    page.mouse.click(PHONE["width"] / 2, PHONE["height"] - 20)  # below the open menu
    expect(logout).to_be_hidden()
    menu.click()
    page.get_by_test_id("settings-link").click()
    page.wait_for_url("**/settings/")
    expect(page.locator("h1")).to_have_text("Settings")


def test_my_appointments_upcoming_first_by_date_the_rest_folded_and_kept_live(server, portal, patient, doctor):  # noqa: F811
    # Booked in this order: December's visit first, then July's (created order is not date order).
    later = book(doctor=doctor, patient=patient, at="09:00", day=today() + datetime.timedelta(days=30))
    sooner = book(doctor=doctor, patient=patient, at="10:00", day=today() + datetime.timedelta(days=2))
    gone = book(doctor=doctor, patient=patient, at="11:00", day=today() + datetime.timedelta(days=5))
    Appointment.objects.filter(pk=gone.pk).update(status=Status.CANCELLED)
    visited = Appointment.objects.create(
        patient=patient, doctor=doctor, date=today() - datetime.timedelta(days=7), time=datetime.time(9, 0),
        status=Status.COMPLETED, queue_number=1,
    )  # fmt: skip
    now = book(doctor=doctor, patient=patient, at="09:30")  # today: the next visit, with its queue
    page = portal(patient, viewport=PHONE)

    expect(page.get_by_test_id("appointment-row")).to_have_count(5)
    assert upcoming_ids(page) == [now.pk, sooner.pk, later.pk]
    assert past_ids(page) == [gone.pk, visited.pk]  # latest first
    past = page.get_by_test_id("past-appointments")
    expect(page.get_by_test_id("past-appointments-toggle")).to_have_text("Past and cancelled (2)")
    expect(row(page, visited.pk)).to_be_hidden()  # folded away
    page.get_by_test_id("past-appointments-toggle").click()
    expect(row(page, visited.pk)).to_be_visible()
    expect(row(page, gone.pk)).to_have_attribute("data-status", "CANCELLED")

    # The next visit shows its queue: now serving, my number, people ahead, the wait.
    strip = row(page, now.pk).get_by_test_id("next-queue")
    expect(strip.get_by_test_id("next-queue-current")).to_have_text("0")
    expect(strip.get_by_test_id("next-queue-mine")).to_have_text(str(now.queue_number))
    expect(strip.get_by_test_id("next-queue-ahead")).to_have_text("0")
    expect(strip.get_by_test_id("next-queue-wait")).to_contain_text("min")
    expect(row(page, sooner.pk).get_by_test_id("next-queue")).to_have_count(0)

    # Cancelled elsewhere: it moves to the folded list, and the next one takes its place.
    token = server.token(patient.email, PASSWORD)
    status, _ = server.request("DELETE", f"/api/appointments/{now.pk}/", token=token)
    assert status == 200
    expect(row(page, now.pk)).to_have_attribute("data-status", "CANCELLED")
    expect(past).to_contain_text(doctor.user.name)
    assert now.pk in past_ids(page) and now.pk not in upcoming_ids(page)
    expect(page.get_by_test_id("past-appointments-toggle")).to_have_text("Past and cancelled (3)")
    expect(page.get_by_test_id("next-queue")).to_have_count(0)  # the next visit is not today

    # A new booking goes where its date puts it.
    between = book(doctor=doctor, patient=patient, at="15:00", day=today() + datetime.timedelta(days=10))
    expect(row(page, between.pk)).to_be_visible()
    assert upcoming_ids(page) == [sooner.pk, between.pk, later.pk]


def test_the_settings_page_saves_and_shows_errors_by_field(portal, patient, doctor):  # noqa: F811
    page = portal(patient, viewport=PHONE)
    page.goto(page.url.replace("/patient/", "/settings/"))
    form = page.get_by_test_id("settings-form")
    expect(form.get_by_test_id("settings-name")).to_have_value(patient.name)

    form.get_by_test_id("settings-name").fill("")
    form.get_by_test_id("settings-phone").fill("12ab")
    form.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-error")).to_be_visible()
    expect(form.locator('[data-error-for="name"]')).not_to_be_empty()
    expect(form.locator('[data-error-for="phone"]')).not_to_be_empty()
    expect(form.get_by_test_id("settings-phone")).to_have_attribute("aria-invalid", "true")
    patient.refresh_from_db()
    assert patient.name == "Pat Patient" and patient.phone in ("", None)  # nothing changed

    form.get_by_test_id("settings-name").fill("Pat Renamed")
    form.get_by_test_id("settings-phone").fill("+880 1712-345678")
    form.get_by_label("বাংলা").check()
    form.get_by_label("Text me when I am offline").check()
    form.get_by_label("Email me when I am offline").uncheck()
    form.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "bn")  # the page answers in the new language
    expect(page.locator("h1")).to_have_text("সেটিংস")
    patient.refresh_from_db()
    assert (patient.name, patient.phone, patient.language) == ("Pat Renamed", "+8801712345678", "bn")
    assert (patient.notify_email, patient.notify_sms) == (False, True)

    # A doctor has the page too; staff do not (the admin is theirs).
    doctor_page = portal(doctor.user, viewport=PHONE)
    doctor_page.goto(doctor_page.url.replace("/doctor/", "/settings/"))
    expect(doctor_page.get_by_test_id("settings-name")).to_have_value(doctor.user.name)


def test_the_patient_page_stays_under_its_weight_on_a_phone(portal, patient, doctor):  # noqa: F811
    book(doctor=doctor, patient=patient, at="09:00")
    page = portal(patient, viewport=PHONE)
    expect(page.get_by_test_id("next-queue-current")).to_have_text("0")
    assert 0 < page_weight(page) < MAX_PAGE_WEIGHT
    loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    # Alerts and devices load on the tap, not with the page.
    assert not [name for name in loaded if name.endswith(("/alerts.js", "/settings.js", "/book.js"))]


# ---- alerts on this phone ----

# Records every permission request, and whether a user's tap was behind it.
RECORD_ASKS = """
window.__asked = [];
if (window.Notification) {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => {
    window.__asked.push(navigator.userActivation ? navigator.userActivation.isActive : null);
    return ask(...args);
  };
}
"""

# Chromium here cannot reach a push service (no network, no Google push endpoint): pushManager's
# subscribe and getSubscription are replaced by a subscription made here, with a real P-256 key and
# auth secret so that the server's own checks pass. Everything else (the permission, the server's
# key, the service worker, the POST, the list, the DELETE) is real.
STUB_SUBSCRIBE = """
(() => {
  const KEYS = %s;
  const saved = () => JSON.parse(localStorage.getItem("stub-subscription") || "null");
  const make = (json) => json && ({
    endpoint: json.endpoint,
    toJSON: () => json,
    unsubscribe: async () => { localStorage.removeItem("stub-subscription"); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    if (!options || options.userVisibleOnly !== true || !(options.applicationServerKey instanceof Uint8Array)
        || options.applicationServerKey.length !== 65) throw new DOMException("bad options", "InvalidAccessError");
    localStorage.setItem("stub-subscription", JSON.stringify(KEYS));
    return make(KEYS);
  };
  PushManager.prototype.getSubscription = async function () { return make(saved()); };
})();
"""

# Until the site's own /sw.js is served (another part of contract v1.2), a minimal worker stands in.
MINIMAL_WORKER = "self.addEventListener('push', () => {});"


def subscription_json(endpoint: str) -> dict:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64(point), "auth": b64(os.urandom(16))}}


def with_worker(server, context) -> None:
    try:
        urllib.request.urlopen(f"{server.url}/sw.js", timeout=10).close()
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        context.route(
            f"{server.url}/sw.js",
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=MINIMAL_WORKER),
        )


def phone_context(open_context, server, *, permissions=(), stub=None):
    context = open_context(viewport=PHONE, permissions=list(permissions))
    context.add_init_script(RECORD_ASKS)
    if stub is not None:
        context.add_init_script(STUB_SUBSCRIBE % json.dumps(stub))
    with_worker(server, context)
    return context


def signed_in(context, server, user, path="/patient/"):
    page = context.new_page()
    page.goto(f"{server.url}/login/")
    page.fill('input[name="email"]', user.email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{server.url}/patient/")
    if path != "/patient/":
        page.goto(f"{server.url}{path}")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    return page


def test_alerts_ask_the_permission_only_after_the_tap_and_say_when_it_is_refused(new_context, server, patient):  # noqa: F811
    context = phone_context(new_context, server)  # the permission is not granted: Chromium refuses
    page = signed_in(context, server, patient)
    page.get_by_test_id("notification-bell").click()
    enable = page.get_by_test_id("push-enable")
    expect(enable).to_be_visible()
    assert page.evaluate("window.__asked") == []  # loading the page and opening the panel asked nothing

    enable.click()
    message = page.get_by_test_id("push-message")
    expect(message).to_contain_text("Alerts are blocked for this site")
    assert page.evaluate("window.__asked") == [True]  # once, with the tap's user activation
    status, body = server.request("GET", "/api/push/subscriptions/", token=server.token(patient.email, PASSWORD))
    assert status == 200 and body["results"] == []


def test_alerts_say_so_in_a_browser_without_push(new_context, server, patient):  # noqa: F811
    context = phone_context(new_context, server)
    context.add_init_script("delete window.PushManager;")
    page = signed_in(context, server, patient, "/settings/")
    page.get_by_test_id("settings-push-enable").click()
    expect(page.get_by_test_id("settings-push-message")).to_contain_text("This browser cannot show alerts")
    assert page.evaluate("window.__asked") == []


def test_alerts_say_so_when_the_push_service_cannot_be_reached(new_context, server, patient):  # noqa: F811
    """No stub: this Chromium's own subscribe fails (it cannot reach a push service), as a phone offline would."""
    context = phone_context(new_context, server, permissions=["notifications"])
    page = signed_in(context, server, patient, "/settings/")
    page.get_by_test_id("settings-push-enable").click()
    expect(page.get_by_test_id("settings-push-message")).to_contain_text("Could not reach the browser's push service")
    assert page.evaluate("window.__asked") == [True]
    expect(page.get_by_test_id("push-device")).to_have_count(0)
    expect(page.locator('[data-role="devices-empty"]')).to_have_text("No device gets alerts yet.")


def test_alerts_on_this_phone_and_the_devices_that_get_them(new_context, server, patient):  # noqa: F811
    """The push service is the one stub (see STUB_SUBSCRIBE): Chromium here cannot reach one."""
    mine = subscription_json("https://fcm.googleapis.com/fcm/send/ux-test-this-phone")
    context = phone_context(new_context, server, permissions=["notifications"], stub=mine)
    token = server.token(patient.email, PASSWORD)
    other = subscription_json("https://updates.push.services.mozilla.com/wpush/v2/ux-test-laptop")
    status, laptop = server.request("POST", "/api/push/subscriptions/", other, token=token)
    assert status == 201, laptop

    page = signed_in(context, server, patient, "/settings/")
    devices = page.get_by_test_id("push-devices").get_by_test_id("push-device")
    expect(devices).to_have_count(1)
    expect(devices.first).to_contain_text("Firefox")
    expect(devices.first).to_have_attribute("data-current", "false")

    page.get_by_test_id("settings-push-enable").click()
    expect(page.get_by_test_id("settings-push-message")).to_have_text("Alerts are on for this device.")
    expect(devices).to_have_count(2)
    here = page.locator('[data-testid="push-device"][data-current="true"]')
    expect(here).to_contain_text("Chrome")
    expect(here.get_by_test_id("push-this-device")).to_have_text("This device")
    status, body = server.request("GET", "/api/push/subscriptions/", token=token)
    assert sorted(s["endpoint"] for s in body["results"]) == sorted([mine["endpoint"], other["endpoint"]])

    # Removing the laptop: gone from the page and from the server.
    page.locator(f'[data-testid="push-device"][data-id="{laptop["id"]}"]').get_by_test_id("push-device-remove").click()
    expect(devices).to_have_count(1)
    expect(devices.first).to_have_attribute("data-current", "true")
    status, body = server.request("GET", "/api/push/subscriptions/", token=token)
    assert [s["endpoint"] for s in body["results"]] == [mine["endpoint"]]

    # In Bangla, from the bell's panel of the patient page (the same device again: nothing new).
    page.goto(f"{server.url}/patient/")
    page.get_by_test_id("menu-toggle").click()
    page.get_by_test_id("language-bn").click()
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    page.get_by_test_id("notification-bell").click()
    page.get_by_test_id("push-enable").click()
    expect(page.get_by_test_id("push-message")).to_have_text("এই ডিভাইসে সতর্কবার্তা চালু হয়েছে।")
    status, body = server.request("GET", "/api/push/subscriptions/", token=token)
    assert len(body["results"]) == 1


@pytest.mark.parametrize("language", ["en", "bn"])
def test_the_settings_page_in_both_languages_fits_a_phone(portal, patient, language):  # noqa: F811
    patient.language = language
    patient.save(update_fields=["language"])
    page = portal(patient, viewport=PHONE)
    page.goto(page.url.replace("/patient/", "/settings/"))
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for hook in ("settings-save", "settings-push-enable", "back-home"):
        assert page.get_by_test_id(hook).bounding_box()["height"] >= 44, hook


IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_the_install_hint_offers_the_browsers_prompt_or_the_iphone_steps(new_context, server, patient):  # noqa: F811
    """The browser's `beforeinstallprompt` is dispatched by the test (the page carries no manifest in
    this test's server): what is checked is the page's answer to it, and the iPhone's steps by its
    user agent."""
    context = phone_context(new_context, server)
    page = signed_in(context, server, patient, "/settings/")
    install = page.get_by_test_id("install-section")
    expect(install).to_be_hidden()  # nothing to offer yet
    page.evaluate(
        """() => {
            const offer = new Event("beforeinstallprompt", { cancelable: true });
            offer.prompt = () => { window.__prompted = true; };
            offer.userChoice = Promise.resolve({ outcome: "accepted" });
            window.dispatchEvent(offer);
        }"""
    )
    expect(page.get_by_test_id("install-app")).to_be_visible()
    expect(page.get_by_test_id("install-ios")).to_be_hidden()
    page.get_by_test_id("install-app").click()
    expect(install).to_be_hidden()
    assert page.evaluate("window.__prompted") is True

    iphone = new_context(viewport=PHONE, user_agent=IPHONE_SAFARI, is_mobile=True, has_touch=True)
    page = signed_in(iphone, server, patient, "/settings/")
    expect(page.get_by_test_id("install-ios")).to_be_visible()
    expect(page.get_by_test_id("install-ios").locator("li")).to_have_count(3)
    expect(page.get_by_test_id("install-app")).to_be_hidden()
