"""The queue's alerts in the open patient portal (Chromium, a phone-sized screen): the doctor calls next,
the patient called sees "It's your turn" in the bell, the one after them "You're next", in their language."""

from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from tests.live import BROWSER_TEST
from tests.test_portals_browser import book, browser, new_context, portal, row  # noqa: F401 (fixtures)

pytestmark = BROWSER_TEST
PHONE = {"width": 390, "height": 844}


def test_the_alerts_reach_the_open_portals_bell_in_each_patients_language(server, portal, patient, patient2, doctor):  # noqa: F811
    patient2.language = "bn"
    patient2.save(update_fields=["language"])
    first = book(doctor=doctor, patient=patient, at="09:00")
    book(doctor=doctor, patient=patient2, at="09:15")
    mine, theirs = portal(patient, viewport=PHONE), portal(patient2, viewport=PHONE)
    errors = []  # a script that trips over the new types would show here
    for page in (mine, theirs):
        page.on("pageerror", lambda error: errors.append(error))
    row(mine, first.pk).get_by_test_id("open-queue").click()
    expect(mine.get_by_test_id("queue-current")).to_have_text("0")
    mine.keyboard.press("Escape")

    status, body = server.request(
        "POST", f"/api/queues/{doctor.pk}/next/", token=server.token(doctor.user.email, PASSWORD)
    )
    assert status == 200, body

    expect(mine.get_by_test_id("notification-badge")).to_have_text("2")  # the booking's and the alert
    expect(mine.get_by_test_id("announcer")).to_contain_text("It's your turn")
    mine.get_by_test_id("notification-bell").click()
    item = mine.get_by_test_id("notification-item").first
    expect(item).to_contain_text("It's your turn")
    expect(item).to_contain_text(f"{doctor.user.name} is calling #1, your number")

    expect(theirs.get_by_test_id("notification-badge")).to_have_text("২")
    theirs.get_by_test_id("notification-bell").click()
    item = theirs.get_by_test_id("notification-item").first
    expect(item).to_contain_text("এরপরই আপনার পালা")
    expect(item).to_contain_text(f"{doctor.user.name}-এর সিরিয়ালে এরপরই আপনি, #2")
    assert errors == []
