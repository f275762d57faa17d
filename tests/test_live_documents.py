"""Documents through a real daphne (the project's own HTTP handler): a multipart upload streamed in,
a download streamed out, and an upload over the limit refused."""

import json
import urllib.request

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts.tests.factories import PASSWORD
from documents.tests import samples
from tests.live import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def post_file(server, token: str, data: bytes, name: str = "report.pdf") -> tuple[int, dict]:
    body = encode_multipart(BOUNDARY, {"kind": "LAB_REPORT", "file": SimpleUploadedFile(name, data)})
    request = urllib.request.Request(f"{server.url}/api/files/", data=body, method="POST")  # noqa: S310
    request.add_header("Content-Type", MULTIPART_CONTENT)
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def small_server(django_db_setup, django_db_blocker):
    """A daphne whose uploads stop at 100 kB."""
    instance = Daphne(FILE_MAX_BYTES=100_000)
    yield instance
    instance.stop()


def test_an_upload_and_its_download_through_daphne(small_server, patient):
    token = small_server.token(patient.email, PASSWORD)
    data = samples.pdf()

    status, body = post_file(small_server, token, data)
    assert status == 201, body
    status, link = small_server.request("POST", f"/api/files/{body['id']}/link/", token=token)
    assert status == 200

    with urllib.request.urlopen(small_server.url + link["url"], timeout=10) as response:  # noqa: S310
        assert response.read() == data
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("size", [150_000, 3_000_000])  # counted as it streams; refused by its length
def test_an_upload_over_the_limit_is_413_through_daphne(small_server, patient, size):
    token = small_server.token(patient.email, PASSWORD)

    status, body = post_file(small_server, token, b"%PDF-1.7\n" + b"0" * size)

    assert status == 413 and set(body) == {"file"}
    assert small_server.request("GET", "/api/files/", token=token)[1]["count"] == 0
