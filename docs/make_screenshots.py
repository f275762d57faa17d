"""Take the portal screenshots in docs/screenshots/ (run by hand: `.venv/bin/python docs/make_screenshots.py`).

Builds a throw-away SQLite database with the demo data, serves it with daphne on a free
port, and photographs the patient and doctor pages at desktop and phone sizes with Chromium.
"""

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}
TV = {"width": 1920, "height": 1080}


def prepare_demo_database() -> None:
    """Point Django at a scratch SQLite file holding the demo data (the server is given the same)."""
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='mediconnect-shots-')}/shots.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo")


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
    prepare_demo_database()
    from tests.live import CHROMIUM, CHROMIUM_ARGS, Daphne

    server = Daphne()
    url = server.url
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

            doctor = browser.new_context(viewport=DESKTOP)
            page = doctor.new_page()
            sign_in(page, url, "doctor@test.com", "/doctor/")
            page.get_by_test_id("call-next").click()
            expect(page.get_by_test_id("queue-current")).to_have_text("1")
            page.screenshot(path=OUT / "doctor-desktop.png", full_page=True)
            doctor.close()

            # The demo's waiting-room board on a TV, after the doctor's call-next above.
            tv = browser.new_context(viewport=TV)
            page = tv.new_page()
            for query, name in (("", "board-tv.png"), ("?lang=bn", "board-tv-bn.png")):
                page.goto(f"{url}/board/demo-board/{query}")
                expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
                expect(page.get_by_test_id("board-queue").first.get_by_test_id("board-next")).to_be_visible()
                page.screenshot(path=OUT / name)
            tv.close()

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
        server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
