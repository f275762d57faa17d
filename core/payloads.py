"""How values look on the wire (REST and socket alike), without DRF: the payload functions use these."""

import datetime

from django.utils import timezone


def wire_datetime(value: datetime.datetime | None) -> str | None:
    """ISO 8601 in the clinic's time zone, as DRF's DateTimeField writes it ("Z" for UTC)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def wire_time(value: datetime.time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def wire_date(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()
