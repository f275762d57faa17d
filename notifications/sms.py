"""Sending SMS: a small backend interface, chosen by the SMS_BACKEND setting (a dotted path).

A backend has one method, `send(phone, text)`, which returns when the provider has taken the
message and raises on failure (the delivery is then retried with backoff).
"""

import json
import logging
import urllib.request

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class BaseSMSBackend:
    def send(self, phone: str, text: str) -> None:
        raise NotImplementedError


class ConsoleSMSBackend(BaseSMSBackend):
    """Writes each message with its recipient's number to the log (development; the default)."""

    def send(self, phone: str, text: str) -> None:
        logger.info("SMS to %s: %s", phone, text)


class HTTPSMSBackend(BaseSMSBackend):
    """A provider's JSON-over-HTTPS API: POST {"to", "from", "text"} to SMS_HTTP_URL with the
    `Authorization: Bearer SMS_HTTP_TOKEN` header; any 2xx answer is taken as accepted.

    Most Bangladeshi gateways take this shape (or a form of it); adapt `payload` for another."""

    timeout = 10

    def payload(self, phone: str, text: str) -> dict:
        return {"to": phone, "from": settings.SMS_HTTP_SENDER, "text": text}

    def send(self, phone: str, text: str) -> None:
        if not settings.SMS_HTTP_URL.startswith("https://"):
            raise RuntimeError("SMS_HTTP_URL must be an https:// URL")
        request = urllib.request.Request(  # noqa: S310 (https only, checked above)
            settings.SMS_HTTP_URL,
            data=json.dumps(self.payload(phone, text)).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.SMS_HTTP_TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise RuntimeError(f"SMS provider answered {response.status}")


def backend() -> BaseSMSBackend:
    return import_string(settings.SMS_BACKEND)()


# GSM 03.38's basic alphabet: a text written only in it fits 160 characters in one SMS; any other
# character (every Bangla letter) makes the whole message UCS-2, 70 characters (UTF-16 units).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_LIMIT, UCS2_LIMIT = 160, 70


def segment_limit(text: str) -> int:
    """How many characters one SMS segment holds for this text."""
    return GSM7_LIMIT if all(c in GSM7_BASIC for c in text) else UCS2_LIMIT


def sms_length(text: str) -> int:
    """The text's length as SMS counts it: characters for GSM-7, UTF-16 code units for UCS-2."""
    if segment_limit(text) == GSM7_LIMIT:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def fits_one_segment(text: str) -> bool:
    return sms_length(text) <= segment_limit(text)


def fit_one_segment(template: str, *, name: str, **params) -> str:
    """`template` filled in, its `{name}` shortened (ending in an ellipsis) so the text fits one SMS segment.

    The ellipsis is "…" in a text that is UCS-2 anyway (Bangla), "..." otherwise: "…" is not in GSM-7
    and would bring an English text down from 160 characters to 70."""
    text = template.format(name=name, **params)
    mark = "…" if segment_limit(template.format(name="", **params)) == UCS2_LIMIT else "..."
    cut = len(name)
    while not fits_one_segment(text) and cut > 0:
        cut -= 1
        text = template.format(name=name[:cut].rstrip() + mark, **params)
    return text
