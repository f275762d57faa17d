"""The strict Content-Security-Policy in Chromium: no page of ours, the admin or the API docs has
anything the policy refuses, and the password pages work end to end in a browser."""

from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, UserFactory
from tests.live import BROWSER_TEST
from tests.test_portals_browser import book, browser, new_context, portal, row  # noqa: F401  (fixtures)

pytestmark = BROWSER_TEST

expect.set_options(timeout=15_000)


def refusals(page) -> list[str]:
    """Chromium reports each CSP refusal on the console; collect them for the page's life."""
    seen = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def test_the_portals_run_under_the_policy_with_nothing_refused(browser, server, portal, patient, doctor):  # noqa: F811
    patient_page = portal(patient)
    refused = refusals(patient_page)
    patient_page.reload()
    expect(patient_page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    booked = book(doctor=doctor, patient=patient, at="15:00")
    expect(row(patient_page, booked.pk)).to_have_attribute("data-status", "CONFIRMED")
    patient_page.get_by_test_id("notification-bell").click()
    expect(patient_page.get_by_test_id("notification-item").first).to_be_visible()

    doctor_page = portal(doctor.user)
    refused += refusals(doctor_page)
    doctor_page.reload()
    expect(doctor_page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(row(doctor_page, booked.pk)).to_be_visible()

    assert refused == []


def test_the_api_docs_and_the_admin_work_under_the_policy(new_context, server):  # noqa: F811
    UserFactory(email="staff@example.com", role="ADMIN", is_staff=True, is_superuser=True)
    page = new_context().new_page()
    refused = refusals(page)

    page.goto(f"{server.url}/api/docs/")
    expect(page.locator(".swagger-ui .information-container")).to_contain_text("MediConnect API")
    expect(page.locator(".opblock").first).to_be_visible()

    page.goto(f"{server.url}/login/")
    page.fill('input[name="email"]', "staff@example.com")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{server.url}/admin/")
    page.goto(f"{server.url}/admin/appointments/appointment/add/")
    expect(page.locator("#appointment_form")).to_be_visible()

    page.context.close()  # every console message of the page is in before the count
    assert refused == []


def test_a_patient_changes_their_password_and_their_other_tab_stays_live(browser, server, portal, patient):  # noqa: F811
    first = portal(patient)
    second = portal(patient, context=first.context)
    refused = refusals(second)

    second.get_by_test_id("change-password").click()
    second.fill('input[name="old_password"]', PASSWORD)
    second.fill('input[name="new_password1"]', "a-Fresh-passphrase-42")
    second.fill('input[name="new_password2"]', "a-Fresh-passphrase-42")
    second.get_by_role("button", name="Change password").click()
    expect(second.get_by_test_id("password-changed")).to_be_visible()

    # The first tab's socket was closed (4401); the page takes a new token with its session and
    # comes back live.
    expect(first.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    first.reload()
    expect(first.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    assert refused == []
