"""Signed download links: a token that names a file and who made the link, valid FILE_LINK_SECONDS."""

import datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

SALT = "documents.file-link"


def link_make(*, file_id: int, user_id: int) -> tuple[str, datetime.datetime]:
    """The link's path and when it expires."""
    token = signing.dumps({"f": file_id, "u": user_id}, salt=SALT, compress=False)
    expires_at = timezone.now() + datetime.timedelta(seconds=settings.FILE_LINK_SECONDS)
    return reverse("file-download", args=[token]), expires_at


def link_read(token: str) -> tuple[int, int] | None:
    """(file id, user id) of a valid, unexpired token; None for anything else."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.FILE_LINK_SECONDS)
        return int(payload["f"]), int(payload["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
