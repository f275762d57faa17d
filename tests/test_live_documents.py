"""Documents through a real daphne (the project's own HTTP handler): a multipart upload streamed in,
a download streamed out, and an upload over the limit refused."""

import http.client
import json
import re
import urllib.request

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts.tests.factories import PASSWORD
from documents.tests import samples
from tests.live import Daphne, post_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


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


def post_chunked(server, path: str, token: str, chunks) -> tuple[int, str, dict]:
    """A POST whose body is sent with chunked encoding (no Content-Length), as a streaming client sends it."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Content-Type": MULTIPART_CONTENT, "Authorization": f"Bearer {token}"}
    try:
        connection.request("POST", path, chunks, headers, encode_chunked=True)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), json.loads(answer.read() or b"null")
    finally:
        connection.close()


def posts_answered(server) -> float:
    """The POSTs the server's Django answered (its /metrics)."""
    text = server.fetch("GET", "/metrics").text
    return sum(
        float(n) for n in re.findall(r'^mediconnect_http_requests_total\{method="POST",[^}]*\} (\S+)$', text, re.M)
    )


@pytest.mark.parametrize("path", ["/api/files/", "/api/appointments/"])
def test_a_streamed_body_past_the_limit_is_dropped_by_the_server_and_answered_413_without_django(
    small_server, patient, path
):
    token = small_server.token(patient.email, PASSWORD)
    before = posts_answered(small_server)
    head = encode_multipart(BOUNDARY, {"kind": "LAB_REPORT"})[: -len(f"--{BOUNDARY}--\r\n")]
    head += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n\r\n'.encode()
    chunks = [head, *[b"%PDF-1.7\n" + b"0" * 65_000] * 50, f"\r\n--{BOUNDARY}--\r\n".encode()]  # 3.25 MB

    status, content_type, body = post_chunked(small_server, path, token, chunks)

    assert (status, content_type) == (413, "application/json")
    if path == "/api/files/":
        assert body == {"file": ["The file is larger than 100000 bytes."]}
    else:
        assert set(body) == {"detail"}
    assert posts_answered(small_server) == before  # the application never had it
    assert small_server.request("GET", "/api/files/", token=token)[1]["count"] == 0
