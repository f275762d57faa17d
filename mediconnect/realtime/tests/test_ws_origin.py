"""The socket's Origin check compares the scheme too: an http:// page may not use the https site's
socket (nor an https page the http one) unless that origin is listed in ALLOWED_ORIGINS."""

import pytest
from channels.testing import WebsocketCommunicator

from mediconnect.asgi import application
from tests.support.wsutil import ready, token_for

pytestmark = [pytest.mark.django_db(transaction=True)]

PROXY = ("HTTP_X_FORWARDED_PROTO", "https")


async def connect(patient, *, origin: bytes, scheme: str = "ws", headers=()):
    """Whether a socket from `origin` is served, over `scheme` (as daphne puts it in the scope)."""

    async def served_over(scope, receive, send):
        return await application(dict(scope, scheme=scheme), receive, send)

    communicator = WebsocketCommunicator(
        served_over,
        f"/ws/?token={token_for(patient)}",
        headers=[(b"host", b"clinic.example"), (b"origin", origin), *headers],
    )
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        assert (await ready(communicator))["user_id"] == patient.pk
        await communicator.disconnect()
    return connected


@pytest.fixture(autouse=True)
def _site(settings):
    settings.ALLOWED_HOSTS = ["clinic.example"]
    settings.ALLOWED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None


@pytest.mark.parametrize(
    ("scheme", "origin", "served"),
    [
        ("wss", b"https://clinic.example", True),
        ("wss", b"http://clinic.example", False),
        ("ws", b"http://clinic.example", True),
        ("ws", b"https://clinic.example", False),
        ("wss", b"https://evil.example", False),
        ("wss", b"null", False),
        ("wss", b"https://clinic.example:443", True),  # the scheme's own port
        ("wss", b"https://clinic.example:8443", False),
        ("wss", b"https://clinic.example:x", False),  # a malformed port refuses, it does not fail
        ("wss", b"http://[clinic.example", False),  # so does a host that does not parse
        ("wss", b"https://sub.clinic.example", False),
    ],
)
async def test_the_sites_own_origin_must_match_its_scheme(patient, scheme, origin, served):
    assert await connect(patient, origin=origin, scheme=scheme) is served


async def test_a_listed_origin_of_the_other_scheme_is_allowed(patient, settings):
    settings.ALLOWED_ORIGINS = ["http://clinic.example"]
    assert await connect(patient, origin=b"http://clinic.example", scheme="wss")
    assert not await connect(patient, origin=b"http://other.example", scheme="wss")


@pytest.mark.parametrize(
    ("forwarded", "origin", "served"),
    [
        (b"https", b"https://clinic.example", True),
        (b"https", b"http://clinic.example", False),
        (b"http", b"http://clinic.example", True),
        (b"http", b"https://clinic.example", False),
        (b"https, http", b"https://clinic.example", True),
    ],
)
async def test_behind_a_trusted_proxy_its_header_tells_the_scheme(patient, settings, forwarded, origin, served):
    # TLS ends at the proxy: daphne sees plain ws, the proxy says https.
    settings.SECURE_PROXY_SSL_HEADER = PROXY
    headers = [(b"x-forwarded-proto", forwarded)]
    assert await connect(patient, origin=origin, scheme="ws", headers=headers) is served


async def test_the_proxy_header_is_ignored_unless_the_proxy_is_trusted(patient):
    headers = [(b"x-forwarded-proto", b"https")]
    assert not await connect(patient, origin=b"https://clinic.example", scheme="ws", headers=headers)
    assert await connect(patient, origin=b"http://clinic.example", scheme="ws", headers=headers)


async def test_with_a_trusted_proxy_and_no_header_the_sockets_scheme_counts(patient, settings):
    settings.SECURE_PROXY_SSL_HEADER = PROXY
    assert await connect(patient, origin=b"https://clinic.example", scheme="wss")
    assert not await connect(patient, origin=b"http://clinic.example", scheme="wss")
