"""Clinical documents and prescriptions on the portals, in Chromium against a real daphne.

A patient uploads a phone photo to an appointment, the doctor's open console shows it at once,
the doctor writes a prescription, and the patient's open portal shows it and downloads its PDF;
in English and in Bangla, with nothing refused by the Content-Security-Policy. A file waiting for the
virus scanner turns available on both open pages when the worker has scanned it.
"""

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests import live
from tests.live import BROWSER_TEST, Daphne
from tests.support.clamd import clamd  # noqa: F401  (a fixture)
from tests.test_csp_browser import refusals
from tests.test_portals_browser import book, browser, new_context, portal, row  # noqa: F401  (fixtures)

pytestmark = BROWSER_TEST

expect.set_options(timeout=15_000)
LIVE = 2_000  # ms: a pushed change is on the other page within this, or the test fails

LABELS = {
    "en": {"documents": "My documents", "write": "Write prescription", "prescription": "Prescription v1"},
    "bn": {"documents": "আমার নথি", "write": "প্রেসক্রিপশন লিখুন", "prescription": "প্রেসক্রিপশন সংস্করণ ১"},
}


def jpeg() -> bytes:
    """A photo as a phone camera would send it."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 60)).save(out, "JPEG")
    return out.getvalue()


def doc_row(scope, title: str):
    return scope.get_by_test_id("document-row").filter(has_text=title)


def upload(page, *, name: str, data: bytes, mime: str, title: str, appointment_id: int | None = None):
    section = page.get_by_test_id("documents-section")
    toggle = section.get_by_test_id("document-upload-toggle")
    if not section.get_by_test_id("document-upload-submit").is_visible():
        toggle.click()
    section.get_by_test_id("document-upload-input").set_input_files({"name": name, "mimeType": mime, "buffer": data})
    section.get_by_test_id("document-kind").select_option("IMAGING")
    if appointment_id is not None:
        section.get_by_test_id("document-appointment").select_option(str(appointment_id))
    section.get_by_test_id("document-title").fill(title)
    section.get_by_test_id("document-upload-submit").click()
    return section


def fill_medicine(item, medicine: str, dose: str, frequency: str, duration: str, instructions: str = "") -> None:
    item.get_by_test_id("medicine-name").fill(medicine)
    item.get_by_test_id("medicine-dose").fill(dose)
    item.get_by_test_id("medicine-frequency").fill(frequency)
    item.get_by_test_id("medicine-duration").fill(duration)
    item.get_by_test_id("medicine-instructions").fill(instructions)


def write_prescription(doctor_page, appointment_id: int, *, medicines: list[tuple], diagnosis: str) -> None:
    row(doctor_page, appointment_id).get_by_test_id("write-prescription").click()
    form = doctor_page.get_by_test_id("prescription-form")
    expect(form).to_be_visible()
    form.get_by_test_id("prescription-diagnosis").fill(diagnosis)
    for index, medicine in enumerate(medicines):
        if index:
            form.get_by_test_id("add-medicine").click()
        fill_medicine(form.get_by_test_id("prescription-item").nth(index), *medicine)
    # A row added by mistake is taken away again.
    form.get_by_test_id("add-medicine").click()
    expect(form.get_by_test_id("prescription-item")).to_have_count(len(medicines) + 1)
    form.get_by_test_id("prescription-item").last.get_by_test_id("remove-medicine").click()
    expect(form.get_by_test_id("prescription-item")).to_have_count(len(medicines))
    form.get_by_test_id("prescription-advice").fill("Drink water")

    form.get_by_test_id("prescription-preview-button").click()
    preview = form.get_by_test_id("prescription-preview")
    expect(preview).to_be_visible()
    expect(preview.get_by_test_id("prescription-preview-item")).to_have_count(len(medicines))
    for medicine in medicines:
        expect(preview).to_contain_text(medicine[0])
    form.get_by_test_id("prescription-submit").click()
    expect(form).to_be_hidden()


@pytest.mark.parametrize("language", ["en", "bn"])
def test_a_photo_reaches_the_doctor_live_and_the_prescription_reaches_the_patient(portal, patient, doctor, language):  # noqa: F811
    patient.language = language
    patient.save(update_fields=["language"])
    appointment = book(doctor=doctor, patient=patient, at="10:00")
    labels = LABELS[language]

    patient_page = portal(patient, viewport={"width": 390, "height": 844})
    doctor_page = portal(doctor.user)
    refused = refusals(patient_page) + refusals(doctor_page)
    for page in (patient_page, doctor_page):
        page.reload()  # the policy is watched from the page's first byte
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(patient_page.get_by_test_id("documents-section").locator("h2")).to_have_text(labels["documents"])
    toggle = row(doctor_page, appointment.pk).get_by_test_id("documents-toggle")
    expect(toggle).to_have_attribute("data-count", "0")

    section = upload(
        patient_page, name="rash.jpg", data=jpeg(), mime="image/jpeg", title="Rash photo", appointment_id=appointment.pk
    )
    expect(doc_row(section, "Rash photo")).to_have_attribute("data-status", "AVAILABLE")

    # The doctor's console, open all along, shows the new file without a reload.
    expect(toggle).to_have_attribute("data-count", "1", timeout=LIVE)
    toggle.click()
    photo = doc_row(row(doctor_page, appointment.pk), "Rash photo")
    expect(photo).to_have_attribute("data-status", "AVAILABLE")
    with doctor_page.expect_download() as shown:
        photo.get_by_test_id("document-download").click()
    assert shown.value.path().read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, re-encoded by the server

    expect(row(doctor_page, appointment.pk).get_by_test_id("write-prescription")).to_be_visible()
    write_prescription(
        doctor_page,
        appointment.pk,
        diagnosis="Contact dermatitis",
        medicines=[
            ("Cetirizine", "10 mg", "Once daily", "7 days", "At night"),
            ("Hydrocortisone 1%", "Thin layer", "Twice daily", "5 days"),
        ],
    )
    expect(row(doctor_page, appointment.pk).get_by_test_id("prescription-link")).to_have_attribute("data-version", "1")

    # The patient's portal, open all along, shows the prescription on the appointment's row.
    link = row(patient_page, appointment.pk).get_by_test_id("prescription-link")
    expect(link).to_contain_text(labels["prescription"], timeout=LIVE)
    with patient_page.expect_download() as pdf:
        link.click()
    assert pdf.value.path().read_bytes().startswith(b"%PDF")

    # Who opened it: the doctor made it, the patient took a link and downloaded it.
    prescription_row = section.get_by_test_id("document-row").first
    prescription_row.get_by_test_id("document-log-toggle").click()
    log = prescription_row.get_by_test_id("document-access-log")
    expect(log.get_by_test_id("document-access-entry")).to_have_count(3)
    expect(log).to_contain_text(doctor.user.name)
    assert [entry.get_attribute("data-action") for entry in log.get_by_test_id("document-access-entry").all()] == [
        "UPLOAD",
        "LINK",
        "DOWNLOAD",
    ]

    # A second version: the latest is the link, the first one is listed as earlier.
    write_prescription(
        doctor_page, appointment.pk, diagnosis="Better", medicines=[("Cetirizine", "10 mg", "Once daily", "3 days")]
    )
    expect(row(patient_page, appointment.pk).get_by_test_id("prescription-link")).to_have_attribute(
        "data-version", "2", timeout=LIVE
    )
    expect(row(patient_page, appointment.pk).get_by_test_id("prescription-version")).to_have_attribute(
        "data-version", "1"
    )

    patient_page.context.close()  # every console message is in before the count
    doctor_page.context.close()
    assert refused == []


def test_the_patient_sees_why_a_file_is_refused_and_removes_one(portal, patient):  # noqa: F811
    page = portal(patient)
    section = upload(
        page, name="notes.pdf", data=b"<html><script>alert(1)</script></html>", mime="application/pdf", title="Bad"
    )
    error = section.locator('[data-error-for="file"]')
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(section.get_by_test_id("document-row")).to_have_count(0)

    upload(page, name="scan.jpg", data=jpeg(), mime="image/jpeg", title="Old scan")
    scan = doc_row(section, "Old scan")
    expect(scan).to_have_attribute("data-status", "AVAILABLE")
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    scan.get_by_test_id("document-remove").click()
    expect(scan).to_have_count(0)
    assert dialogs and "Old scan" in dialogs[0]
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    expect(section.get_by_test_id("document-row")).to_have_count(0)


@pytest.fixture(scope="module")
def scanning_server(django_db_setup, django_db_blocker, clamd):  # noqa: F811
    """A daphne whose uploads wait for the virus scanner (a clamd of the test's own)."""
    instance = Daphne(CLAMD_URL=clamd.url)
    yield instance
    instance.stop()


def test_a_scanned_upload_turns_available_on_both_open_pages(portal, scanning_server, clamd, patient, doctor):  # noqa: F811
    appointment = book(doctor=doctor, patient=patient, at="11:00")
    patient_page = portal(patient, base=scanning_server.url)
    doctor_page = portal(doctor.user, base=scanning_server.url)

    section = upload(
        patient_page, name="knee.jpg", data=jpeg(), mime="image/jpeg", title="Knee", appointment_id=appointment.pk
    )
    photo = doc_row(section, "Knee")
    expect(photo).to_have_attribute("data-status", "SCANNING")
    expect(photo.get_by_test_id("document-download")).to_have_count(0)  # nothing leaves unscanned
    toggle = row(doctor_page, appointment.pk).get_by_test_id("documents-toggle")
    expect(toggle).to_have_attribute("data-count", "1", timeout=LIVE)
    toggle.click()
    at_doctor = doc_row(row(doctor_page, appointment.pk), "Knee")
    expect(at_doctor).to_have_attribute("data-status", "SCANNING")

    # The worker starts only now, so the pages were seen waiting; its start and the scan take their time.
    with live.worker_process(CLAMD_URL=clamd.url):
        expect(photo).to_have_attribute("data-status", "AVAILABLE", timeout=30_000)
        expect(at_doctor).to_have_attribute("data-status", "AVAILABLE", timeout=LIVE)
    expect(photo.get_by_test_id("document-download")).to_be_visible()
