"""The process's Prometheus series (prometheus-client's default registry), served by GET /metrics.

Here at the bottom of the imports so that every layer can count: the push after commit
(core.outbox), the hub and the socket (mediconnect). Labels are bounded sets only;
nothing about a user (id, email, a reason) is ever a label. An increment is all a hot path pays.
"""

from prometheus_client import Counter, Gauge, Histogram

WS_CONNECTIONS = Gauge("mediconnect_ws_connections", "Open WebSocket connections of this process (accepted on /ws/).")
# Per event, not per layer message: a booking that records two events for the patient and one for
# the doctor counts 3 (in 2 messages). Counted when the layer took the message.
EVENTS_PUSHED = Counter(
    "mediconnect_events_pushed", "Stored per-user events handed to the channel layer after commit (one per event)."
)
# Per layer message (event pushes, queue updates, socket closes) the layer did not take: an error,
# or not sent within PUSH_TIMEOUT_SECONDS. Clients fill the gap from the stored events.
PUSH_FAILURES = Counter(
    "mediconnect_push_failures", "Layer messages of committed changes that failed or timed out (one per message)."
)
REPLAYED_EVENTS = Counter(
    "mediconnect_replayed_events", "Events sent from the store instead of live: resume replays and gaps filled."
)
RESYNCS = Counter("mediconnect_resyncs", "resync frames sent: a resume or gap too long to replay.")
LAYER_ERRORS = Counter(
    "mediconnect_layer_errors",
    "Channel layer operations of the hub that failed (receive, join, leave, rejoin, probe).",
    ["operation"],
)
for _operation in ("receive", "join", "leave", "rejoin", "probe"):
    LAYER_ERRORS.labels(_operation)  # every operation's series exists from the start, at 0

HTTP_REQUESTS = Counter(
    "mediconnect_http_requests",
    "HTTP requests answered by Django, by method, route pattern and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "mediconnect_http_request_duration_seconds",
    "Time from the first middleware to the response, by method, route pattern and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Video visits (visits.services), as the visit pages report them: a call starts with a join when
# nobody is in, connects once, fails when it gave up before connecting. Counted by the process that
# took the report, after commit; sum over the processes.
CALLS_STARTED = Counter("mediconnect_calls_started", "Video visit calls started (the first join of a call).")
CALLS_CONNECTED = Counter("mediconnect_calls_connected", "Video visit calls whose media connected.")
CALLS_FAILED = Counter("mediconnect_calls_failed", "Video visit calls that failed before they connected.")
