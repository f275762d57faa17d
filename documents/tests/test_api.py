"""The files API as a client sees it: uploads and refusals, who sees what, links and downloads,
removal and the access log."""

import datetime
import io

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from appointments.models import Status as AppointmentStatus
from appointments.tests.factories import AppointmentFactory
from documents.models import AccessLog, File
from notifications.models import Event, Notification
from tests.support import FILE_KEYS

from . import samples
from .factories import FileFactory

pytestmark = pytest.mark.django_db

LIST_KEYS = {"count", "next", "previous", "results"}


def upload(client, data: bytes = None, *, name="report.pdf", **fields):
    body = {"kind": "LAB_REPORT", **fields}
    if data is not None or "file" not in fields:
        body["file"] = SimpleUploadedFile(name, samples.pdf() if data is None else data, content_type="application/pdf")
    body = {key: value for key, value in body.items() if value is not None}
    return client.post("/api/files/", body, format="multipart")


@pytest.fixture
def visit(db, patient, doctor):
    """A CONFIRMED appointment of `patient` with `doctor`."""
    return AppointmentFactory(patient=patient, doctor=doctor)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def download(client, url: str):
    response = client.get(url)
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return response, body


# --- upload ---------------------------------------------------------------------------------------


def test_a_patient_uploads_a_pdf_of_their_own(api, patient, stored):
    response = upload(api(patient), title="Blood test")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == FILE_KEYS
    assert body["patient"] == patient.pk and body["patient_name"] == patient.name
    assert body["appointment"] is None
    assert (body["kind"], body["title"], body["status"]) == ("LAB_REPORT", "Blood test", "AVAILABLE")
    assert body["content_type"] == "application/pdf" and body["size"] == len(samples.pdf())
    assert (body["uploaded_by"], body["uploaded_by_name"]) == (patient.pk, patient.name)
    assert len(stored()) == 1
    # Stored under a random name that says nothing of the patient, the title or the uploaded name.
    name = File.objects.get().content.name
    assert "report" not in name and "Blood" not in name
    assert list(AccessLog.objects.values_list("user", "action")) == [(patient.pk, "UPLOAD")]


def test_the_title_defaults_to_the_uploaded_name(api, patient):
    response = upload(api(patient), name="scan 2024.pdf")

    assert response.status_code == 201 and response.json()["title"] == "scan 2024.pdf"


def test_a_patient_names_an_appointment_of_theirs_and_its_doctor_is_told(api, patient, doctor, visit):
    response = upload(api(patient), appointment=visit.pk)

    assert response.status_code == 201
    assert response.json()["appointment"] == visit.pk
    told = Notification.objects.get(user=doctor.user)
    assert (told.type, told.title, told.related_type, told.related_id) == (
        "DOCUMENT_ADDED",
        "New document",
        "File",
        response.json()["id"],
    )
    assert not Notification.objects.filter(user=patient).exists()  # their own upload
    for user in (patient, doctor.user):
        event = Event.objects.filter(user=user, type="file_updated").get()
        assert event.data == response.json()


def test_a_doctor_uploads_for_a_patient_they_treat_and_the_patient_is_told(api, patient, doctor, visit):
    response = upload(api(doctor), patient=patient.pk, kind="IMAGING", title="Chest X-ray")

    assert response.status_code == 201
    assert response.json()["patient"] == patient.pk and response.json()["uploaded_by"] == doctor.user_id
    told = Notification.objects.get(user=patient)
    assert (told.type, told.title) == ("DOCUMENT_ADDED", "New document")
    # The title is health data: not in the notification's text.
    assert "X-ray" not in told.title + told.message
    assert [e.type for e in Event.objects.filter(user=patient).order_by("seq")] == ["new_notification", "file_updated"]
    assert not Event.objects.filter(user=doctor.user).exists()  # no appointment named: the patient only


def test_a_doctor_uploads_to_an_appointment_and_the_patient_is_told(api, patient, doctor, visit):
    response = upload(api(doctor), appointment=visit.pk)

    assert response.status_code == 201 and response.json()["patient"] == patient.pk
    assert Notification.objects.filter(user=patient, type="DOCUMENT_ADDED").count() == 1
    assert not Notification.objects.filter(user=doctor.user).exists()
    assert Event.objects.filter(user=doctor.user, type="file_updated").count() == 1


def test_a_patient_who_names_another_patient_gets_400(api, patient, patient2):
    response = upload(api(patient), patient=patient2.pk)

    assert response.status_code == 400 and set(response.json()) == {"patient"}
    assert not File.objects.exists()


@pytest.mark.parametrize("status", [AppointmentStatus.CANCELLED])
def test_a_doctor_without_a_live_appointment_with_the_patient_gets_400(api, patient, doctor, doctor2, status):
    AppointmentFactory(patient=patient, doctor=doctor, status=status)

    for who in (doctor, doctor2):
        response = upload(api(who), patient=patient.pk)
        assert response.status_code == 400 and set(response.json()) == {"patient"}
    assert not File.objects.exists()


def test_an_appointment_the_caller_may_not_see_is_a_400(api, patient2, visit, doctor2):
    for who in (patient2, doctor2):
        response = upload(api(who), appointment=visit.pk)
        assert response.status_code == 400 and set(response.json()) == {"appointment"}
    assert not File.objects.exists()


def test_a_doctor_or_admin_must_name_the_patient(api, doctor, admin_user):
    for who in (doctor, admin_user):
        response = upload(api(who))
        assert response.status_code == 400 and set(response.json()) == {"patient"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "X_RAY"}, "kind"),
        ({"kind": None}, "kind"),
        ({"title": "x" * 201}, "title"),
        ({"file": None}, "file"),
        ({"appointment": "soon"}, "appointment"),
        ({"patient": 2**31}, "patient"),
    ],
)
def test_bad_fields_are_400_and_nothing_is_stored(api, patient, stored, fields, field):
    response = upload(api(patient), **fields)

    assert response.status_code == 400
    assert field in response.json()
    assert not File.objects.exists() and stored() == []


def test_an_empty_file_is_400(api, patient, stored):
    response = upload(api(patient), b"")

    assert response.status_code == 400 and set(response.json()) == {"file"}
    assert stored() == []


def test_a_file_over_the_limit_is_413_and_nothing_is_stored(api, patient, settings, stored):
    settings.FILE_MAX_BYTES = 1000
    # Over the limit, but not by so much that the body's length alone tells: the bytes are counted.
    data = samples.image("PNG", size=(40, 40), compress_level=0)
    assert 1000 < len(data) < 20_000

    response = upload(api(patient), data, name="big.png")

    assert response.status_code == 413
    assert set(response.json()) == {"file"}
    assert not File.objects.exists() and stored() == []


def test_a_body_far_over_the_limit_is_413_before_it_is_parsed(api, patient, settings, stored):
    settings.FILE_MAX_BYTES = 1000
    response = upload(api(patient), b"%PDF-" + b"0" * 200_000)

    assert response.status_code == 413 and set(response.json()) == {"file"}
    assert stored() == []


def test_a_file_at_the_limit_is_accepted(api, patient, settings):
    data = samples.pdf()
    settings.FILE_MAX_BYTES = len(data)

    assert upload(api(patient), data).status_code == 201


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("setup.pdf", samples.EXECUTABLE),
        ("drawing.svg", samples.SVG),
        ("page.pdf", samples.HTML),
        ("report.pdf", samples.pdf_with_open_action_js()),
        ("report.pdf", samples.pdf_with_names_javascript()),
        ("report.pdf", samples.pdf_with_open_action_only()),
        ("report.pdf", samples.pdf_with_page_aa()),
        ("report.pdf", samples.pdf_with_embedded_file()),
        ("scan.png", samples.truncated_png()),
        ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 20),
    ],
)
def test_what_we_do_not_accept_is_415_and_nothing_is_stored(api, patient, stored, name, data):
    response = upload(api(patient), data, name=name)

    assert response.status_code == 415
    assert set(response.json()) == {"file"}
    assert not File.objects.exists() and stored() == [] and not AccessLog.objects.exists()


def test_the_type_comes_from_the_bytes_not_the_name(api, patient):
    response = upload(api(patient), samples.image("PNG"), name="report.pdf")

    assert response.status_code == 201 and response.json()["content_type"] == "image/png"


def test_a_photo_is_stored_upright_without_its_metadata(api, patient):
    response = upload(api(patient), samples.phone_photo(), name="photo.jpg", kind="IMAGING")

    assert response.status_code == 201 and response.json()["content_type"] == "image/jpeg"
    link = api(patient).post(f"/api/files/{response.json()['id']}/link/").json()
    _, body = download(api(patient), link["url"])
    picture = Image.open(io.BytesIO(body))
    assert picture.size == (20, 40)  # turned as its orientation said
    assert picture.getpixel((10, 5))[0] > 200 and picture.getpixel((10, 35))[2] > 200  # red on top, blue below
    assert dict(picture.getexif()) == {}
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment"} & set(picture.info)
    assert b"Pat" not in body and b"PhoneMaker" not in body
    assert response.json()["size"] == len(body)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(api, patient, fmt):
    response = upload(api(patient), samples.image(fmt), name=f"scan.{fmt.lower()}")

    assert response.status_code == 201 and response.json()["content_type"] == f"image/{fmt.lower()}"


def test_without_a_token_the_api_is_401(client):
    assert client.get("/api/files/").status_code == 401
    assert client.post("/api/files/", {}).status_code == 401


# --- who sees what --------------------------------------------------------------------------------


@pytest.fixture
def files(patient, patient2, doctor, doctor2, visit):
    """0: patient's (with `visit`), 1: patient's, 2: patient2's (with doctor2, cancelled), 3: patient2's."""
    cancelled = AppointmentFactory(patient=patient2, doctor=doctor2, status=AppointmentStatus.CANCELLED)
    return [
        FileFactory(patient=patient, appointment=visit, kind=File.Kind.LAB_REPORT),
        FileFactory(patient=patient, kind=File.Kind.IMAGING),
        FileFactory(patient=patient2, appointment=cancelled),
        FileFactory(patient=patient2),
    ]


@pytest.mark.parametrize(
    ("viewer", "visible"),
    [
        ("patient", [0, 1]),
        ("patient2", [2, 3]),
        ("doctor", [0, 1]),  # every file of a patient they treat
        ("doctor2", []),  # a cancelled appointment gives no access
        ("admin_user", [0, 1, 2, 3]),
    ],
)
def test_lists_and_reads_show_what_the_caller_may_see(request, api, files, viewer, visible):
    client = api(request.getfixturevalue(viewer))

    response = client.get("/api/files/")

    assert response.status_code == 200 and set(response.json()) == LIST_KEYS
    assert ids(response) == [files[i].pk for i in reversed(visible)]  # newest first
    assert all(set(row) == FILE_KEYS for row in response.json()["results"])
    for i, file in enumerate(files):
        assert client.get(f"/api/files/{file.pk}/").status_code == (200 if i in visible else 404)


def test_a_doctor_sees_a_past_patient_s_files(api, patient, doctor):
    AppointmentFactory(
        patient=patient, doctor=doctor, date=datetime.date(2020, 1, 1), status=AppointmentStatus.COMPLETED
    )
    file = FileFactory(patient=patient)

    assert api(doctor).get(f"/api/files/{file.pk}/").status_code == 200


def test_filters(api, admin_user, files, patient, visit):
    client = api(admin_user)

    assert ids(client.get("/api/files/", {"patient": patient.pk})) == [files[1].pk, files[0].pk]
    assert ids(client.get("/api/files/", {"appointment": visit.pk})) == [files[0].pk]
    assert ids(client.get("/api/files/", {"kind": "IMAGING"})) == [files[1].pk]
    assert client.get("/api/files/", {"kind": "NOPE"}).status_code == 400
    assert client.get("/api/files/", {"patient": 2**40}).status_code == 400


def test_lists_are_paginated(api, patient):
    FileFactory.create_batch(3, patient=patient)

    body = api(patient).get("/api/files/", {"page_size": 2}).json()

    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


# --- links and downloads --------------------------------------------------------------------------


def test_a_link_serves_the_bytes_once_with_safe_headers(api, patient, client):
    file = FileFactory(patient=patient, original_name="Blood test.pdf")

    link = api(patient).post(f"/api/files/{file.pk}/link/")

    assert link.status_code == 200 and set(link.json()) == {"url", "expires_at"}
    url = link.json()["url"]
    assert url.startswith("/api/files/download/")
    response, body = download(client, url)  # no credentials: the link is enough
    assert response.status_code == 200
    assert body == file.content.open("rb").read()
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"].startswith("attachment;")
        and "Blood test.pdf" in response["Content-Disposition"]
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert list(file.access_log.values_list("user", "action")) == [(patient.pk, "LINK"), (patient.pk, "DOWNLOAD")]


def test_the_download_name_has_the_extension_of_what_the_file_is(api, patient, client):
    response = upload(api(patient), samples.image("PNG"), name="scan.pdf")
    link = api(patient).post(f"/api/files/{response.json()['id']}/link/").json()

    served, _ = download(client, link["url"])

    assert served["Content-Type"] == "image/png" and "scan.pdf.png" in served["Content-Disposition"]


def test_a_link_expires(api, patient, client, settings):
    settings.FILE_LINK_SECONDS = 60
    file = FileFactory(patient=patient)
    with time_machine.travel(datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC), tick=False):
        link = api(patient).post(f"/api/files/{file.pk}/link/").json()
        assert link["expires_at"].startswith("2030-01-01T18:01:00")  # +60 s, in the clinic's time zone
    with time_machine.travel(datetime.datetime(2030, 1, 1, 12, 0, 59, tzinfo=datetime.UTC), tick=False):
        assert download(client, link["url"])[0].status_code == 200
    with time_machine.travel(datetime.datetime(2030, 1, 1, 12, 1, 2, tzinfo=datetime.UTC), tick=False):
        assert download(client, link["url"])[0].status_code == 403
    assert file.access_log.filter(action="DOWNLOAD").count() == 1


def test_an_altered_link_is_403(api, patient, client):
    file = FileFactory(patient=patient)
    other = FileFactory(patient=patient)
    url = api(patient).post(f"/api/files/{file.pk}/link/").json()["url"]
    token = url.rstrip("/").rsplit("/", 1)[1]

    forged = url.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    other_url = api(patient).post(f"/api/files/{other.pk}/link/").json()["url"]
    spliced = url.replace(token.split(":")[0], other_url.rstrip("/").rsplit("/", 1)[1].split(":")[0])

    for bad in (forged, spliced, "/api/files/download/nonsense/"):
        assert download(client, bad)[0].status_code == 403
    assert not AccessLog.objects.filter(action="DOWNLOAD").exists()


def test_a_link_stops_working_when_its_file_is_removed(api, patient, client):
    file = FileFactory(patient=patient)
    url = api(patient).post(f"/api/files/{file.pk}/link/").json()["url"]

    assert api(patient).delete(f"/api/files/{file.pk}/").status_code == 204

    assert download(client, url)[0].status_code == 403


def test_a_link_stops_working_when_its_maker_loses_access(api, patient, doctor, client, visit):
    file = FileFactory(patient=patient)
    url = api(doctor).post(f"/api/files/{file.pk}/link/").json()["url"]
    type(visit).objects.filter(pk=visit.pk).update(status=AppointmentStatus.CANCELLED)

    assert download(client, url)[0].status_code == 403


@pytest.mark.parametrize("status", [File.Status.SCANNING, File.Status.REJECTED])
def test_no_link_for_a_file_that_is_not_available(api, patient, status):
    file = FileFactory(patient=patient, status=status)

    response = api(patient).post(f"/api/files/{file.pk}/link/")

    assert response.status_code == 409
    assert not file.access_log.exists()


def test_no_link_for_a_file_the_caller_may_not_see(api, patient, patient2):
    file = FileFactory(patient=patient)

    assert api(patient2).post(f"/api/files/{file.pk}/link/").status_code == 404


def test_behind_nginx_the_bytes_are_handed_to_it(api, patient, client, settings):
    settings.FILES_X_ACCEL_PREFIX = "/protected-files/"
    file = FileFactory(patient=patient)
    url = api(patient).post(f"/api/files/{file.pk}/link/").json()["url"]

    response = client.get(url)

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-files/{file.content.name}"
    assert response.content == b""
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"


# --- removal --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("remover", "expected"), [("patient", 204), ("doctor", 204), ("admin_user", 204)])
def test_the_patient_the_uploader_or_an_admin_removes_a_file(request, api, patient, doctor, visit, remover, expected):
    file = FileFactory(patient=patient, uploaded_by=doctor.user)
    who = request.getfixturevalue(remover)

    response = api(who).delete(f"/api/files/{file.pk}/")

    assert response.status_code == expected
    file.refresh_from_db()
    assert file.removed_at is not None and file.content.storage.exists(file.content.name)  # bytes kept
    assert api(patient).get(f"/api/files/{file.pk}/").status_code == 404
    assert file.pk not in ids(api(patient).get("/api/files/"))
    assert file.access_log.filter(action="DELETE").count() == 1


def test_others_who_may_see_a_file_may_not_remove_it(api, patient, doctor, visit, patient2):
    file = FileFactory(patient=patient)  # uploaded by the patient

    assert api(doctor).delete(f"/api/files/{file.pk}/").status_code == 403
    assert api(patient2).delete(f"/api/files/{file.pk}/").status_code == 404
    file.refresh_from_db()
    assert file.removed_at is None


# --- access log -----------------------------------------------------------------------------------


def test_the_access_log_in_order_readable_after_removal(api, patient, doctor, visit, client, admin_user):
    response = upload(api(doctor), patient=patient.pk)
    file_id = response.json()["id"]
    download(client, api(doctor).post(f"/api/files/{file_id}/link/").json()["url"])
    api(patient).post(f"/api/files/{file_id}/link/")
    api(patient).delete(f"/api/files/{file_id}/")

    for reader in (patient, admin_user):
        log = api(reader).get(f"/api/files/{file_id}/access-log/")
        assert log.status_code == 200
        assert [(e["user"], e["action"]) for e in log.json()] == [
            (doctor.user_id, "UPLOAD"),
            (doctor.user_id, "LINK"),
            (doctor.user_id, "DOWNLOAD"),
            (patient.pk, "LINK"),
            (patient.pk, "DELETE"),
        ]
        assert set(log.json()[0]) == {"at", "user", "user_name", "action"}
        assert log.json()[0]["user_name"] == doctor.user.name


def test_only_the_patient_and_admins_read_the_access_log(api, patient, doctor, visit, patient2):
    file = FileFactory(patient=patient, uploaded_by=doctor.user)

    assert api(doctor).get(f"/api/files/{file.pk}/access-log/").status_code == 403
    assert api(patient2).get(f"/api/files/{file.pk}/access-log/").status_code == 404
    assert api(patient).get(f"/api/files/{file.pk}/access-log/").status_code == 200


# --- the portals' session ---------------------------------------------------------------------------


@pytest.fixture
def portal(patient):
    """A browser's session with CSRF checks on, as the portal pages upload."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient)
    browser.get("/patient/")
    return browser, browser.cookies["csrftoken"].value


def test_a_portal_session_uploads_with_its_csrf_token(portal, patient):
    browser, token = portal
    file = SimpleUploadedFile("r.pdf", samples.pdf())

    assert browser.post("/api/files/", {"file": file, "kind": "OTHER"}).status_code == 403  # no token
    file.seek(0)
    response = browser.post("/api/files/", {"file": file, "kind": "OTHER"}, headers={"X-CSRFToken": token})

    assert response.status_code == 201 and response.json()["patient"] == patient.pk


def test_a_portal_session_gets_413_for_a_file_over_the_limit(portal, settings, stored):
    browser, token = portal
    settings.FILE_MAX_BYTES = 1000
    file = SimpleUploadedFile("big.png", samples.image("PNG", size=(40, 40), compress_level=0))

    response = browser.post("/api/files/", {"file": file, "kind": "OTHER"}, headers={"X-CSRFToken": token})

    assert response.status_code == 413 and set(response.json()) == {"file"}
    assert stored() == []
