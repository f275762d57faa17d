"""The upload's handler chain: the bytes past FILE_MAX_BYTES are never taken in."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from documents.uploads import LimitedUploadHandler, upload_handlers


class Counting(FileUploadHandler):
    """Stands where Django's temporary-file handler would: counts what reaches it."""

    received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)

    def file_complete(self, file_size):
        return None


def parse(body: bytes, handlers):
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    return MultiPartParser(meta, io.BytesIO(body), handlers).parse()


def fields(size: int) -> dict:
    return {"kind": "OTHER", "file": SimpleUploadedFile("a.pdf", b"x" * size)}


def form(size: int) -> bytes:
    return encode_multipart(BOUNDARY, fields(size))


def test_the_parse_stops_at_the_limit(settings):
    settings.FILE_MAX_BYTES = 100_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000_000
    limiter, counter = LimitedUploadHandler(), Counting()

    _, files = parse(form(150_000), [limiter, counter])  # under the limit + the form allowance

    assert limiter.too_large
    assert "file" not in files
    assert counter.received <= settings.FILE_MAX_BYTES + 64 * 1024  # one chunk past the limit at most


def test_a_body_far_over_the_limit_is_not_parsed(settings):
    settings.FILE_MAX_BYTES = 1000
    limiter, counter = LimitedUploadHandler(), Counting()

    post, files = parse(form(200_000), [limiter, counter])

    assert limiter.too_large and counter.received == 0 and not post and not files


def test_within_the_limit_the_file_goes_to_disk(settings, rf):
    settings.FILE_MAX_BYTES = 100_000
    request = rf.post("/api/files/", data=fields(50_000))
    limiter, request.upload_handlers = upload_handlers(request)

    upload = request.FILES["file"]

    assert not limiter.too_large
    assert upload.size == 50_000 and hasattr(upload, "temporary_file_path")  # not held in memory
