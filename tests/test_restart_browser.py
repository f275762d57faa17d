"""A portal page through a graceful restart of its server, in Chromium, behind a stand-in load balancer."""

import datetime
import signal

from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from tests.breakable import TcpProxy
from tests.live import BROWSER_TEST, Daphne
from tests.test_portals_browser import book_over_http, browser, row  # noqa: F401 (browser is a fixture)

pytestmark = BROWSER_TEST


def test_a_page_whose_server_restarts_moves_to_another_at_once_and_stays_live(browser, patient, doctor):  # noqa: F811
    leaving, staying = Daphne(), Daphne()
    proxy = TcpProxy(leaving.port)
    context = browser.new_context()
    try:
        context.clock.install()
        page = context.new_page()
        page.goto(f"{proxy.url}/login/")
        page.fill('input[name="email"]', patient.email)
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        page.wait_for_url(f"{proxy.url}/patient/")
        status = page.get_by_test_id("connection-status")
        expect(status).to_have_attribute("data-state", "connected")

        # From here no timer of the page fires: a reconnect that waited for a backoff never would.
        page.clock.pause_at(datetime.datetime.now() + datetime.timedelta(seconds=1))
        proxy.target_port = staying.port
        leaving.process.send_signal(signal.SIGTERM)
        assert leaving.process.wait(timeout=10) == 0

        expect(status).to_have_attribute("data-state", "connected")
        booked = book_over_http(staying, doctor=doctor, patient=patient, at="14:30")
        expect(row(page, booked["id"])).to_be_visible()  # live, on the other server
    finally:
        context.close()
        proxy.close()
        leaving.stop()
        staying.stop()
