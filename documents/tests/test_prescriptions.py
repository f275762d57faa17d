"""E-prescriptions as a client sees them (contract v1.2 "Prescriptions"): who may issue and read them, the
rules on their fields, versions, the PDF in the patient's files, and what the patient is told."""

import datetime
import io
import subprocess

import pikepdf
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from appointments.models import Status as AppointmentStatus
from appointments.tests.factories import AppointmentFactory
from documents.models import File, Prescription
from documents.pdf import weasyprint
from documents.pdf_text import with_actual_text
from notifications.models import Delivery, Event, Notification
from tests.support import FILE_KEYS, bearer_client, released_together

from . import samples

pytestmark = pytest.mark.django_db

PRESCRIPTION_KEYS = {"id", "appointment", "version", "diagnosis", "items", "advice", "follow_up", "file", "created_at"}
ITEM_KEYS = {"medicine", "dose", "frequency", "duration", "instructions"}

ITEMS = [
    {"medicine": "Paracetamol 500 mg", "dose": "1 tablet", "frequency": "3 times a day", "duration": "5 days"},
    {
        "medicine": "Cetirizine 10 mg",
        "dose": "1 tablet",
        "frequency": "at night",
        "duration": "7 days",
        "instructions": "May cause drowsiness",
    },
    {
        "medicine": "Oral rehydration salts",
        "dose": "1 sachet",
        "frequency": "after each loose stool",
        "duration": "3 days",
    },
]


def body(**fields):
    return {"diagnosis": "Viral fever", "items": ITEMS, "advice": "Drink plenty of water.", **fields}


def issue(client, appointment, data=None):
    return client.post(
        f"/api/appointments/{appointment.pk}/prescription/", body() if data is None else data, format="json"
    )


def pdf_text(file_id: int) -> str:
    """The text a PDF reader extracts (poppler's pdftotext) from a file's stored bytes."""
    data = File.objects.get(pk=file_id).content.read()
    result = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    # Words as a reader's search sees them: a table cell may wrap over lines.
    return " ".join(result.stdout.decode().split())


@pytest.fixture
def visit(db, patient, doctor):
    """A CONFIRMED appointment of `patient` with `doctor`."""
    return AppointmentFactory(patient=patient, doctor=doctor)


# --- issuing ---------------------------------------------------------------------------------------


def test_the_doctor_issues_a_prescription(api, visit, doctor, patient):
    response = issue(
        api(doctor), visit, body(follow_up=(timezone.localdate() + datetime.timedelta(days=7)).isoformat())
    )

    assert response.status_code == 201
    data = response.json()
    assert set(data) == PRESCRIPTION_KEYS
    assert data["appointment"] == visit.pk and data["version"] == 1
    assert data["diagnosis"] == "Viral fever" and data["advice"] == "Drink plenty of water."
    assert data["follow_up"] == (timezone.localdate() + datetime.timedelta(days=7)).isoformat()
    assert all(set(item) == ITEM_KEYS for item in data["items"])
    assert [item["medicine"] for item in data["items"]] == [item["medicine"] for item in ITEMS]
    assert data["items"][0]["instructions"] == "" and data["items"][1]["instructions"] == "May cause drowsiness"

    # Its PDF is one of the patient's files: the appointment's, AVAILABLE at once, a real PDF.
    file = api(patient).get(f"/api/files/{data['file']}/").json()
    assert set(file) == FILE_KEYS
    assert file["kind"] == "PRESCRIPTION" and file["status"] == "AVAILABLE"
    assert file["appointment"] == visit.pk and file["patient"] == patient.pk
    assert file["content_type"] == "application/pdf" and file["uploaded_by"] == doctor.user.pk
    link = api(patient).post(f"/api/files/{data['file']}/link/")
    download = api(patient).get(link.json()["url"])
    pdf = b"".join(download.streaming_content)
    assert pdf.startswith(b"%PDF-")
    assert len(pikepdf.open(io.BytesIO(pdf)).pages) == 1


def test_the_pdf_carries_the_prescription_as_text(api, visit, doctor, patient, settings):
    settings.CLINIC_NAME = "Green Road Clinic"
    follow_up = timezone.localdate() + datetime.timedelta(days=10)
    response = issue(api(doctor), visit, body(follow_up=follow_up.isoformat()))

    text = pdf_text(response.json()["file"])
    for expected in [
        "Green Road Clinic",
        "Dr. Doc",
        "Cardiology",
        "Pat Patient",
        "Viral fever",
        "Paracetamol 500 mg",
        "Cetirizine 10 mg",
        "Oral rehydration salts",
        "May cause drowsiness",
        "3 times a day",
        "Drink plenty of water.",
        "Prescription",
        "Diagnosis",
        "Advice",
        follow_up.strftime("%B"),
    ]:
        assert expected in text, expected


def test_a_bangla_patients_pdf_is_in_bangla(api, visit, doctor, patient):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    items = [{**ITEMS[0], "frequency": "দিনে ৩ বার", "instructions": "খাবারের পরে"}, *ITEMS[1:]]
    advice = "প্রচুর পানি পান করুন এবং বিশ্রাম নিন। জ্বর তিন দিনের বেশি থাকলে আবার আসুন।"
    response = issue(api(doctor), visit, body(diagnosis="জ্বর ও সর্দি", items=items, advice=advice))

    assert response.status_code == 201
    text = pdf_text(response.json()["file"])
    # Medicine names stay as the doctor wrote them; the labels are Bangla, and every Bangla text comes out
    # as the Unicode it was written in (conjuncts, reph and split vowel signs included).
    assert "Paracetamol 500 mg" in text and "Pat Patient" in text
    for words in ["জ্বর ও সর্দি", "রোগ নির্ণয়", "প্রেসক্রিপশন", "রোগী", "তারিখ", "দিনে ৩ বার", "খাবারের পরে", advice]:
        assert words in text, words
    assert "Diagnosis" not in text


def test_a_long_bangla_prescription_over_several_pages_keeps_its_text(api, visit, doctor, patient):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    items = [{**ITEM, "medicine": f"Medicine {n}", "instructions": f"খাবারের পরে, {n} নম্বর " * 10} for n in range(30)]
    advice = "প্রচুর পানি পান করুন এবং বিশ্রাম নিন। " * 40

    response = issue(api(doctor), visit, body(diagnosis="জ্বর ও সর্দি", items=items, advice=advice.strip()))

    assert response.status_code == 201
    data = File.objects.get(pk=response.json()["file"]).content.read()
    assert len(pikepdf.open(io.BytesIO(data)).pages) > 1
    text = pdf_text(response.json()["file"])
    assert "জ্বর ও সর্দি" in text and "Medicine 29" in text
    assert text.count("খাবারের পরে") == 300 and text.count("বিশ্রাম নিন") == 40
    assert text.count("ওষুধ") == 1  # the head row is drawn once, not again on each page


def test_a_text_layer_that_does_not_pair_up_is_left_as_drawn(api, visit, doctor, patient, caplog):
    """The ActualText goes in only when the structure tree's text lines up with the HTML's: never a wrong text."""
    html = "<html lang='bn'><body><p>জ্বর ও সর্দি</p><p>Paracetamol</p></body></html>"
    drawn = weasyprint().HTML(string=html).write_pdf(pdf_tags=True)
    assert with_actual_text(drawn, html) != drawn
    other = html.replace("Paracetamol", "Ibuprofen")
    assert with_actual_text(drawn, other) == drawn
    assert "left as drawn" in caplog.text and "Ibuprofen" not in caplog.text


def test_a_truncated_image_is_still_refused_once_a_prescription_was_rendered(api, visit, doctor, patient):
    """WeasyPrint's import turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process; the uploads' check
    must not go soft because a PDF was made."""
    assert issue(api(doctor), visit).status_code == 201
    upload = SimpleUploadedFile("scan.png", samples.truncated_png(), content_type="image/png")
    response = api(patient).post("/api/files/", {"kind": "IMAGING", "file": upload}, format="multipart")
    assert response.status_code == 415


def test_the_pdf_has_no_active_content(api, visit, doctor):
    """The files' own rule (no JavaScript, open action or embedded file) holds for the server's PDFs too."""
    response = issue(api(doctor), visit)
    data = File.objects.get(pk=response.json()["file"]).content.read()
    pdf = pikepdf.open(io.BytesIO(data))
    assert "/OpenAction" not in pdf.Root and "/Names" not in pdf.Root


def test_another_post_issues_the_next_version_and_keeps_the_earlier(api, visit, doctor, patient):
    first = issue(api(doctor), visit).json()
    second = issue(api(doctor), visit, body(diagnosis="Dengue fever", items=ITEMS[:1])).json()

    assert (first["version"], second["version"]) == (1, 2)
    assert second["file"] != first["file"]
    latest = api(patient).get(f"/api/appointments/{visit.pk}/prescription/")
    assert latest.status_code == 200 and latest.json() == second
    every = api(patient).get(f"/api/appointments/{visit.pk}/prescriptions/")
    assert every.status_code == 200
    assert every.json() == [first, second]  # oldest first, not paginated
    # Both PDFs stay in the patient's files.
    kinds = api(patient).get("/api/files/", {"kind": "PRESCRIPTION"}).json()
    assert sorted(row["id"] for row in kinds["results"]) == sorted([first["file"], second["file"]])


def test_a_completed_appointment_takes_a_prescription(api, doctor, patient):
    visit = AppointmentFactory(patient=patient, doctor=doctor, status=AppointmentStatus.COMPLETED)
    assert issue(api(doctor), visit).status_code == 201


@pytest.mark.parametrize("status", [AppointmentStatus.PENDING, AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW])
def test_only_a_confirmed_or_completed_appointment_takes_one(api, doctor, patient, status, stored):
    visit = AppointmentFactory(patient=patient, doctor=doctor, status=status)

    response = issue(api(doctor), visit)

    assert response.status_code == 409
    assert not Prescription.objects.exists() and not File.objects.exists() and stored() == []


def test_only_the_appointments_doctor_issues_it(api, visit, patient, admin_user, doctor2):
    assert issue(api(patient), visit).status_code == 403
    assert issue(api(admin_user), visit).status_code == 403
    # Another doctor does not see the appointment at all.
    assert issue(api(doctor2), visit).status_code == 404
    assert issue(api(doctor2), visit, {"items": "not even a list"}).status_code == 404
    assert not Prescription.objects.exists()


def test_an_unknown_appointment_is_404(api, doctor):
    assert api(doctor).post("/api/appointments/999999/prescription/", body(), format="json").status_code == 404
    assert api(doctor).get("/api/appointments/999999/prescription/").status_code == 404
    assert api(doctor).get("/api/appointments/999999/prescriptions/").status_code == 404


def test_anonymous_callers_are_refused(visit):
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/appointments/{visit.pk}/prescription/").status_code == 401
    assert APIClient().post(f"/api/appointments/{visit.pk}/prescription/", body(), format="json").status_code == 401


# --- reading ---------------------------------------------------------------------------------------


def test_whoever_sees_the_appointment_reads_its_prescriptions(
    api, visit, doctor, patient, admin_user, patient2, doctor2
):
    issued = issue(api(doctor), visit).json()

    for who in (doctor, patient, admin_user):
        assert api(who).get(f"/api/appointments/{visit.pk}/prescription/").json() == issued
        assert api(who).get(f"/api/appointments/{visit.pk}/prescriptions/").json() == [issued]
    for who in (patient2, doctor2):
        assert api(who).get(f"/api/appointments/{visit.pk}/prescription/").status_code == 404
        assert api(who).get(f"/api/appointments/{visit.pk}/prescriptions/").status_code == 404


def test_no_prescription_yet(api, visit, patient):
    assert api(patient).get(f"/api/appointments/{visit.pk}/prescription/").status_code == 404
    response = api(patient).get(f"/api/appointments/{visit.pk}/prescriptions/")
    assert response.status_code == 200 and response.json() == []


# --- the fields ------------------------------------------------------------------------------------

ITEM = {"medicine": "Paracetamol", "dose": "500 mg", "frequency": "3x", "duration": "5 days"}


@pytest.mark.parametrize(
    "fields, errors",
    [
        ({"items": []}, {"items"}),
        ({"items": None}, {"items"}),
        ({"items": {"medicine": "x"}}, {"items"}),
        ({"items": [ITEM] * 31}, {"items"}),
        ({"diagnosis": "x" * 501}, {"diagnosis"}),
        ({"advice": "x" * 2001}, {"advice"}),
        ({"follow_up": "2026-13-01"}, {"follow_up"}),
        ({"follow_up": "tomorrow"}, {"follow_up"}),
        ({"diagnosis": "a\x00b"}, {"diagnosis"}),
        ({"diagnosis": ["a list"]}, {"diagnosis"}),
    ],
)
def test_bad_fields_are_400_by_field(api, visit, doctor, fields, errors, stored):
    data = {"items": [ITEM], **fields}
    if fields.get("items", ...) is None:
        del data["items"]
    response = issue(api(doctor), visit, data)

    assert response.status_code == 400
    assert set(response.json()) == errors
    assert not Prescription.objects.exists() and stored() == []


def test_item_errors_are_listed_per_item(api, visit, doctor):
    items = [
        ITEM,
        {"dose": "1", "frequency": "2", "duration": "3"},
        {**ITEM, "medicine": "x" * 201, "dose": "d" * 101},
        {**ITEM, "instructions": "i" * 301},
        {**ITEM, "medicine": "   "},
        "not an object",
    ]

    response = issue(api(doctor), visit, {"items": items})

    assert response.status_code == 400
    per_item = response.json()["items"]
    assert len(per_item) == len(items)
    assert per_item[0] == {}
    assert set(per_item[1]) == {"medicine"}
    assert set(per_item[2]) == {"medicine", "dose"}
    assert set(per_item[3]) == {"instructions"}
    assert set(per_item[4]) == {"medicine"}
    assert set(per_item[5]) == {"non_field_errors"}
    assert all(isinstance(message, str) for errors in per_item for messages in errors.values() for message in messages)


def test_the_limits_themselves_are_accepted(api, visit, doctor):
    item = {"medicine": "m" * 200, "dose": "d" * 100, "frequency": "f" * 100, "duration": "t" * 100}
    data = {"diagnosis": "x" * 500, "advice": "y" * 2000, "items": [{**item, "instructions": "i" * 300}] * 30}

    response = issue(api(doctor), visit, data)

    assert response.status_code == 201
    assert len(response.json()["items"]) == 30
    assert response.json()["diagnosis"] == "x" * 500


def test_optional_fields_may_be_left_out(api, visit, doctor):
    response = issue(api(doctor), visit, {"items": [{**ITEM, "dose": "", "frequency": "", "duration": ""}]})

    assert response.status_code == 201
    data = response.json()
    assert (data["diagnosis"], data["advice"], data["follow_up"]) == ("", "", None)


def test_a_body_that_is_not_an_object_is_400(api, visit, doctor):
    response = api(doctor).post(f"/api/appointments/{visit.pk}/prescription/", [ITEM], format="json")
    assert response.status_code == 400


def test_follow_up_is_judged_in_the_clinics_time_zone(api, visit, doctor):
    """At 23:30 UTC it is already the next day in Dhaka (UTC+6): the UTC date is then in the past."""
    with time_machine.travel(datetime.datetime(2030, 3, 9, 23, 30, tzinfo=datetime.UTC), tick=False):
        visit.date = datetime.date(2030, 3, 10)
        visit.save(update_fields=["date"])
        past = issue(api(doctor), visit, body(follow_up="2030-03-09"))
        today = issue(api(doctor), visit, body(follow_up="2030-03-10"))

    assert past.status_code == 400 and set(past.json()) == {"follow_up"}
    assert today.status_code == 201 and today.json()["follow_up"] == "2030-03-10"


# --- what the patient is told ----------------------------------------------------------------------


def test_the_patient_gets_prescription_issued_and_file_updated(api, visit, doctor, patient):
    issued = issue(api(doctor), visit).json()

    notifications = Notification.objects.filter(user=patient)
    assert [(n.type, n.title, n.related_type, n.related_id) for n in notifications] == [
        ("PRESCRIPTION_ISSUED", "Prescription ready", "Appointment", visit.pk)
    ]
    # One notification: the PDF's own DOCUMENT_ADDED is not sent beside it.
    message = notifications.get().message
    assert "Dr. Doc" in message and "Viral fever" not in message and "Paracetamol" not in message
    events = list(Event.objects.filter(user=patient).order_by("seq").values_list("type", "data"))
    assert [kind for kind, _ in events] == ["file_updated", "new_notification"]
    assert events[0][1]["id"] == issued["file"] and events[0][1]["kind"] == "PRESCRIPTION"
    # The doctor hears of the file too (their appointment's), and gets no notification.
    assert list(Event.objects.filter(user=doctor.user).values_list("type", flat=True)) == ["file_updated"]
    assert not Notification.objects.filter(user=doctor.user).exists()


def test_an_offline_patient_is_told_by_sms_and_email_without_health_details(api, visit, doctor, patient):
    patient.phone, patient.notify_sms, patient.language = "+8801700000000", True, "bn"
    patient.save(update_fields=["phone", "notify_sms", "language"])

    issue(api(doctor), visit, body(diagnosis="জ্বর ও সর্দি"))

    notification = Notification.objects.get(user=patient)
    assert notification.title == "প্রেসক্রিপশন তৈরি"
    deliveries = {d.channel: d for d in Delivery.objects.filter(notification=notification)}
    assert set(deliveries) == {"EMAIL", "SMS"}
    sms = deliveries["SMS"].body
    assert "Dr. Doc" in sms and "প্রেসক্রিপশন" in sms
    for delivery in deliveries.values():
        for detail in ("জ্বর", "Paracetamol", "Drink"):
            assert detail not in delivery.body and detail not in delivery.subject


# --- races -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_posts_at_once_get_versions_1_and_2(doctor, patient):
    visit = AppointmentFactory(patient=patient, doctor=doctor)

    def ready(i):
        client = bearer_client(doctor)

        def post():
            response = issue(client, visit, body(diagnosis=f"Issue {i}"))
            return response.status_code, response.json()

        return post

    results = released_together(2, ready)

    assert [code for code, _ in results] == [201, 201]
    assert sorted(data["version"] for _, data in results) == [1, 2]
    stored = list(Prescription.objects.filter(appointment=visit).order_by("version"))
    assert [p.version for p in stored] == [1, 2]
    assert len({p.file_id for p in stored}) == 2
    # Each PDF was rendered with the version it was stored as (the later one re-rendered when it lost).
    assert "version 2" not in pdf_text(stored[0].file_id) and "version 2" in pdf_text(stored[1].file_id)
    assert Notification.objects.filter(user=patient, type="PRESCRIPTION_ISSUED").count() == 2


# --- the admin -------------------------------------------------------------------------------------


def test_the_admin_shows_prescriptions_read_only(api, visit, doctor, admin_user, client):
    issued = issue(api(doctor), visit).json()
    client.force_login(admin_user)

    listing = client.get("/admin/documents/prescription/")
    page = client.get(f"/admin/documents/prescription/{issued['id']}/change/")

    assert listing.status_code == 200 and page.status_code == 200
    content = page.content.decode()
    assert "Paracetamol 500 mg" in content and "Viral fever" in content
    assert 'name="_save"' not in content
    assert client.get("/admin/documents/prescription/add/").status_code == 403
    assert client.post(f"/admin/documents/prescription/{issued['id']}/delete/", {"post": "yes"}).status_code == 403
    assert Prescription.objects.filter(pk=issued["id"]).exists()
