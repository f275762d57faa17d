"""Take the portal screenshots in docs/screenshots/ (run by hand: `.venv/bin/python docs/make_screenshots.py`;
`… make_screenshots.py documents` takes only those of the documents and the prescription form).

Builds a throw-away SQLite database with the demo data, serves it with daphne on a free
port, and photographs the patient and doctor pages at desktop and phone sizes with Chromium.
"""

import datetime
import io
import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}
TALL_PHONE = {"width": 390, "height": 844}
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


FOLLOW_UP = (datetime.date.today() + datetime.timedelta(days=14)).isoformat()


def photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (210, 190, 170)).save(out, "JPEG")
    return out.getvalue()


def phone(browser):
    return browser.new_context(viewport=TALL_PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def switch_language(page, language: str) -> None:
    if page.get_by_test_id("menu-toggle").is_visible():  # a phone: the switch is in the header's menu
        page.get_by_test_id("menu-toggle").click()
    page.get_by_test_id(f"language-{language}").click()
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")


def documents_shots(browser, url: str) -> None:
    """The patient's documents (a photo uploaded from the phone, a prescription) and the doctor's
    prescription form with two medicines and its preview, on a 390×844 phone in English and Bangla."""
    doctor = phone(browser)
    page = doctor.new_page()
    sign_in(page, url, "doctor@test.com", "/doctor/")
    write = page.get_by_test_id("write-prescription").first
    appointment_id = write.locator("xpath=ancestor::li").get_attribute("data-id")
    for language in ("en", "bn"):
        switch_language(page, language)
        page.get_by_test_id("write-prescription").first.click()
        form = page.get_by_test_id("prescription-form")
        form.get_by_test_id("prescription-diagnosis").fill("Acute bronchitis")
        medicines = [
            ("Amoxicillin 500 mg", "1 capsule", "3 times a day", "7 days", "After meals"),
            ("Paracetamol 500 mg", "1 tablet", "When needed", "3 days", ""),
        ]
        for index, (name, dose, frequency, duration, instructions) in enumerate(medicines):
            if index:
                form.get_by_test_id("add-medicine").click()
            item = form.get_by_test_id("prescription-item").nth(index)
            item.get_by_test_id("medicine-name").fill(name)
            item.get_by_test_id("medicine-dose").fill(dose)
            item.get_by_test_id("medicine-frequency").fill(frequency)
            item.get_by_test_id("medicine-duration").fill(duration)
            item.get_by_test_id("medicine-instructions").fill(instructions)
        form.get_by_test_id("prescription-advice").fill("Rest, warm fluids.")
        form.get_by_test_id("prescription-follow-up").fill(FOLLOW_UP)
        form.get_by_test_id("prescription-diagnosis").focus()
        form.get_by_test_id("prescription-diagnosis").evaluate("node => node.blur()")
        page.screenshot(path=OUT / f"prescription-form-{language}.png")
        form.get_by_test_id("prescription-preview-button").click()
        expect(form.get_by_test_id("prescription-preview")).to_be_visible()
        page.screenshot(path=OUT / f"prescription-preview-{language}.png")
        if language == "en":
            form.get_by_test_id("prescription-submit").click()
            expect(form).to_be_hidden()
        else:
            form.get_by_test_id("prescription-cancel").click()
    doctor.close()

    patient = phone(browser)
    page = patient.new_page()
    sign_in(page, url, "patient@test.com", "/patient/")
    section = page.get_by_test_id("documents-section")
    section.get_by_test_id("document-upload-toggle").click()
    section.get_by_test_id("document-upload-input").set_input_files(
        {"name": "rash.jpg", "mimeType": "image/jpeg", "buffer": photo()}
    )
    section.get_by_test_id("document-kind").select_option("IMAGING")
    section.get_by_test_id("document-appointment").select_option(appointment_id)
    section.get_by_test_id("document-title").fill("Rash on the arm")
    section.get_by_test_id("document-upload-submit").click()
    expect(section.get_by_test_id("document-row").first).to_have_attribute("data-status", "AVAILABLE")
    for language in ("en", "bn"):
        switch_language(page, language)
        if not section.get_by_test_id("document-upload-submit").is_visible():
            section.get_by_test_id("document-upload-toggle").click()
        section.get_by_test_id("document-row").first.get_by_test_id("document-log-toggle").click()
        expect(section.get_by_test_id("document-access-log")).to_be_visible()
        section.scroll_into_view_if_needed()
        section.screenshot(path=OUT / f"documents-patient-{language}.png")
    patient.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    prepare_demo_database()
    from tests.live import CHROMIUM, CHROMIUM_ARGS, Daphne

    server = Daphne()
    url = server.url
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            if sys.argv[1:] == ["documents"]:
                documents_shots(browser, url)
                browser.close()
                return

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
            switch_language(page, "bn")
            page.screenshot(path=OUT / "patient-phone-bn.png")
            patient_phone.close()
            browser.close()
    finally:
        server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
