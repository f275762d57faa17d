"""Take the portal screenshots in docs/screenshots/ (run by hand: `.venv/bin/python docs/make_screenshots.py`).

Builds a throw-away SQLite database with the demo data, serves it with daphne on a free
port, and photographs the patient and doctor pages at desktop and phone sizes with Chromium.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("daphne exited")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("daphne did not start")


def sign_in(page, url: str, email: str, home: str) -> None:
    page.goto(f"{url}/login/")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', "password123")
    page.click('button[type="submit"]')
    page.wait_for_url(f"{url}{home}")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("appointment-row").first).to_be_visible()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="mediconnect-shots-")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/shots.sqlite3",
        "DEBUG": "true",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "mediconnect.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)

            doctor = browser.new_context(viewport=DESKTOP)
            page = doctor.new_page()
            sign_in(page, url, "doctor@test.com", "/doctor/")
            page.get_by_test_id("call-next").click()
            expect(page.get_by_test_id("queue-current")).to_have_text("1")
            page.screenshot(path=OUT / "doctor-desktop.png", full_page=True)
            doctor.close()

            doctor_phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            page = doctor_phone.new_page()
            sign_in(page, url, "doctor@test.com", "/doctor/")
            page.screenshot(path=OUT / "doctor-phone.png", full_page=True)
            doctor_phone.close()

            patient = browser.new_context(viewport=DESKTOP)
            page = patient.new_page()
            sign_in(page, url, "patient@test.com", "/patient/")
            page.screenshot(path=OUT / "patient-desktop.png", full_page=True)
            page.get_by_test_id("notification-bell").click()
            expect(page.get_by_test_id("notification-item").first).to_be_visible()
            page.screenshot(path=OUT / "patient-notifications-desktop.png")
            patient.close()

            patient_phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            page = patient_phone.new_page()
            sign_in(page, url, "patient@test.com", "/patient/")
            page.screenshot(path=OUT / "patient-phone.png", full_page=True)
            page.get_by_test_id("open-queue").first.click()
            expect(page.get_by_test_id("queue-current")).to_have_text("1")
            page.screenshot(path=OUT / "patient-queue-phone.png")
            page.get_by_test_id("close-queue").click()
            page.get_by_test_id("language-bn").click()
            expect(page.locator("html")).to_have_attribute("lang", "bn")
            expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
            page.screenshot(path=OUT / "patient-phone-bn.png")
            patient_phone.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
