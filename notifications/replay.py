"""Reading a user's stored event stream back: its head, and the pages a socket replays on resume."""

import datetime

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from core.wire import stored_event_frame

from .models import Event, EventSequence

# A replay is read and sent this many events at a time.
REPLAY_PAGE = 100


def event_frame(event: Event) -> str:
    return stored_event_frame(event.type, event.data, event.seq)


def last_seq(user_id: int) -> int | None:
    """The newest seq of the user's stream (None before their first event)."""
    return EventSequence.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first()


def stream_heads(user_ids) -> dict[int, int]:
    """The newest seq of each user's stream (users with no event yet are left out)."""
    return dict(EventSequence.objects.filter(user_id__in=user_ids).values_list("user_id", "last_seq"))


def with_stream_head(users):
    """`users` annotated with `stream_head`: the newest seq of each one's stream (None before their first event)."""
    head = EventSequence.objects.filter(user=OuterRef("pk")).values("last_seq")[:1]
    return users.annotate(stream_head=Subquery(head))


def events_after(user_id: int, after: int, upto: int | None = None):
    """Stored events of a user after `after` (and up to `upto`), oldest first."""
    qs = Event.objects.filter(user_id=user_id, seq__gt=after).order_by("seq")
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    return qs


def replay_page(user_id: int, after: int, upto: int, size: int = REPLAY_PAGE) -> list[Event]:
    """The next `size` stored events of a user after `after` (up to `upto`), oldest first."""
    return list(events_after(user_id, after, upto).only("seq", "type", "data", "created_at")[:size])


def replayable(first_page: list[Event], after: int) -> bool:
    """Whether a resume from `after` can be replayed from the store, given the first page read after it.

    The rule: the next event (`after + 1`) must still be stored and not older than the stream's
    retention (EVENT_RETENTION_DAYS). Events are pruned oldest first, so if the next one is there
    and kept, so is every later one. Otherwise the client resyncs over REST.
    """
    if not first_page or first_page[0].seq != after + 1:
        return False
    kept_since = timezone.now() - datetime.timedelta(days=getattr(settings, "EVENT_RETENTION_DAYS", 30))
    return first_page[0].created_at >= kept_since
