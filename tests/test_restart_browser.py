"""A portal page through a graceful restart of its server, in Chromium, behind a stand-in load balancer."""

import contextlib
import datetime
import signal
import socket
import threading

from playwright.sync_api import expect

from tests.live import BROWSER_TEST, Daphne, free_port
from tests.support.factories import PASSWORD
from tests.test_portals_browser import book_over_http, browser, row  # noqa: F401 (browser is a fixture)

pytestmark = BROWSER_TEST


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class SwitchingProxy:
    """A TCP forwarder on a free port, as a load balancer: each new connection goes to `target`."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


def test_a_page_whose_server_restarts_moves_to_another_at_once_and_stays_live(browser, patient, doctor):  # noqa: F811
    leaving, staying = Daphne(), Daphne()
    proxy = SwitchingProxy(leaving.port)
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
        proxy.target = staying.port
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
