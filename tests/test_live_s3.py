"""Documents in S3 (FILES_STORAGE=s3): a real daphne configured from its environment, against moto's S3
server on a free port. The upload lands in the bucket under a random name, privately; the signed
link streams it back through the node."""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from accounts.tests.factories import PASSWORD
from documents.tests import samples
from tests.live import Daphne, free_port, post_file, stop_process

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server", reason="moto[server] (requirements-dev.txt)")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

BUCKET = "mediconnect-documents"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
EVERYONE = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3-compatible server, on 127.0.0.1 and a free port, with the documents' bucket."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer within 30 s") from None
                time.sleep(0.1)  # polling for the port to open, bounded by the deadline
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=BUCKET)
        yield url, s3
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def s3_server(s3_endpoint, django_db_setup, django_db_blocker):
    """A daphne whose documents live in the bucket, configured as a deployment would be."""
    url, _s3 = s3_endpoint
    instance = Daphne(
        FILES_STORAGE="s3",
        FILES_S3_BUCKET=BUCKET,
        FILES_S3_ENDPOINT_URL=url,
        FILES_S3_REGION=REGION,
        FILES_X_ACCEL_PREFIX="",
        **CREDENTIALS,
    )
    yield instance
    instance.stop()


def test_an_upload_lands_in_the_bucket_privately_under_a_random_name_and_its_link_streams_it_back(
    s3_server, s3_endpoint, patient
):
    _url, s3 = s3_endpoint
    token = s3_server.token(patient.email, PASSWORD)
    data = samples.pdf()

    status, file = post_file(s3_server, token, data, name="Rahman blood test.pdf")
    assert status == 201, file
    status, link = s3_server.request("POST", f"/api/files/{file['id']}/link/", token=token)
    assert status == 200

    with urllib.request.urlopen(s3_server.url + link["url"], timeout=10) as response:  # noqa: S310
        assert response.read() == data
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Length"] == str(len(data))
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "Rahman blood test.pdf" in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "private, no-store"

    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(keys) == 1 and re.fullmatch(r"files/[0-9a-f]{32}", keys[0]), keys
    assert s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == data
    grants = s3.get_object_acl(Bucket=BUCKET, Key=keys[0])["Grants"]
    assert grants and not [g for g in grants if g["Grantee"].get("URI") in EVERYONE], grants


def test_the_bucket_storage_streams_reads_refuses_urls_and_says_when_an_object_is_gone(s3_endpoint):
    from django.core.files.base import ContentFile

    from documents.s3 import PrivateS3Storage, StreamedObject

    url, _s3 = s3_endpoint
    storage = PrivateS3Storage(
        bucket_name=BUCKET,
        endpoint_url=url,
        region_name=REGION,
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    data = bytes(range(256)) * 4096  # 1 MiB
    name = storage.save("files/streamed", ContentFile(data))

    with storage.open(name, "rb") as stream:
        # Read from the network as it is read: no seeking, no copy of the whole object first.
        assert isinstance(stream, StreamedObject) and not stream.seekable()
        assert stream.size == len(data)
        assert b"".join(iter(lambda: stream.read(64 * 1024), b"")) == data
    with pytest.raises(FileNotFoundError):
        storage.open("files/never-stored", "rb")
    with pytest.raises(NotImplementedError):
        storage.url(name)
    storage.delete(name)


def test_the_settings_choose_the_storage_from_the_environment_and_refuse_x_accel_with_s3():
    from mediconnect.tests.test_settings import settings_under

    s3 = settings_under(
        {"SECRET_KEY": "k", "FILES_STORAGE": "s3", "FILES_S3_BUCKET": BUCKET, "FILES_S3_REGION": REGION},
        ["STORAGES"],
    )["STORAGES"]["documents"]
    assert s3 == {
        "BACKEND": "documents.s3.PrivateS3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": None, "region_name": REGION},
    }
    on_disk = settings_under({"SECRET_KEY": "k", "FILES_GROUP_READABLE": "true"}, ["STORAGES"])["STORAGES"]
    assert on_disk["documents"]["OPTIONS"]["file_permissions_mode"] == 0o640
    assert on_disk["documents"]["OPTIONS"]["directory_permissions_mode"] == 0o750

    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediconnect.settings", "ENV_FILE": "", "SECRET_KEY": "k"}
    env.update(FILES_STORAGE="s3", FILES_S3_BUCKET=BUCKET, FILES_X_ACCEL_PREFIX="/protected-files/")
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "FILES_X_ACCEL_PREFIX serves files from FILES_ROOT" in out.stderr
