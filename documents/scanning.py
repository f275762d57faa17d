"""The virus scan (contract v1.2): clamd checks each new file on the task worker, never in the request.

`CLAMD_URL` is `tcp://host:port` or `unix:///path`; `clamav-client` speaks clamd's INSTREAM protocol,
so clamd needs no access to our storage. A file stays SCANNING until clamd answers: clean → AVAILABLE,
a signature found → REJECTED. While clamd cannot be reached (or fails mid-scan) the task is queued
again later (services.file_scan_retry): a file never becomes AVAILABLE unscanned.
"""

import logging
from urllib.parse import urlsplit

from clamav_client.clamd import ClamdError, ClamdNetworkSocket, ClamdUnixSocket
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_tasks import task

from . import services
from .models import File
from .storage import documents_storage

logger = logging.getLogger(__name__)


class ScannerDown(Exception):
    """clamd could not be reached or gave no verdict."""


def clamd_client(url: str, *, timeout: float):
    """A clamav-client socket for `tcp://host:port` or `unix:///path`."""
    parts = urlsplit(url)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return ClamdNetworkSocket(host=parts.hostname, port=parts.port, timeout=timeout)
    if parts.scheme == "unix" and parts.path:
        return ClamdUnixSocket(path=parts.path, timeout=timeout)
    raise ImproperlyConfigured(f"CLAMD_URL must be tcp://host:port or unix:///path, not {url!r}.")


def scan_stream(stream, *, url: str, timeout: float) -> str | None:
    """The signature clamd found in `stream` (None: clean); raises ScannerDown without a verdict."""
    try:
        result = clamd_client(url, timeout=timeout).instream(stream)
    except (ClamdError, OSError) as exc:
        raise ScannerDown(type(exc).__name__) from exc
    status, signature = (result or {}).get("stream", (None, None))
    if status == "OK":
        return None
    if status == "FOUND":
        return signature or "unknown"
    raise ScannerDown(f"clamd answered {status!r}")


@task()
def scan_file(file_id: int) -> str:
    """The worker's task: have clamd check one SCANNING file and record the verdict, or queue a retry."""
    file = File.objects.filter(pk=file_id, status=File.Status.SCANNING).only("pk", "content").first()
    if file is None:
        return "gone"
    url = settings.CLAMD_URL
    try:
        if not url:
            raise ScannerDown("CLAMD_URL is not set")
        with documents_storage.open(file.content.name, "rb") as stream:
            signature = scan_stream(stream, url=url, timeout=settings.CLAMD_TIMEOUT)
    except ScannerDown as exc:
        run_after = services.file_scan_retry(file_id=file_id)
        # File ids only: a title is health data.
        logger.warning("virus scan of file %s put off until %s: %s", file_id, run_after, exc)
        return "retry"
    if signature:
        logger.warning("virus scan: file %s rejected (%s)", file_id, signature)
    services.file_scan_result(file_id=file_id, infected=bool(signature))
    return "infected" if signature else "clean"
