"""GET /metrics: who may read it, and the series the sockets, pushes and requests move."""

import asyncio
from unittest import mock

import pytest
from channels.layers import get_channel_layer
from django.urls import resolve
from prometheus_client import REGISTRY

from mediconnect.realtime.hub import Hub
from notifications.models import Event
from tests.support.wsutil import book, frames_until, open_socket, ready


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- who may read it


@pytest.mark.django_db
def test_a_loopback_client_reads_the_metrics_in_prometheus_text_format(client):
    for address in ("127.0.0.1", "::1"):
        response = client.get("/metrics", REMOTE_ADDR=address)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.content.decode()
        for series in (
            "mediconnect_ws_connections ",
            "mediconnect_events_pushed_total ",
            "mediconnect_push_failures_total ",
            "mediconnect_replayed_events_total ",
            "mediconnect_resyncs_total ",
            'mediconnect_layer_errors_total{operation="receive"} ',
        ):
            assert f"\n{series}" in body, series


@pytest.mark.django_db
def test_anyone_else_is_refused_with_403(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 403


@pytest.mark.django_db
def test_the_bearer_token_opens_it_from_anywhere_and_a_wrong_one_does_not(client, settings):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", **remote).status_code == 403  # no token set

    settings.METRICS_TOKEN = "scrape-me-7f3a"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a", **remote).status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3b", **remote).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic scrape-me-7f3a", **remote).status_code == 403
    assert client.get("/metrics", **remote).status_code == 403


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_counts_not_the_proxy(client, settings):
    # nginx on the same machine connects from the loopback: the client it forwards is who asks.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200

    # A proxy nobody declared: its forwarded request is not a loopback client either.
    settings.TRUSTED_PROXIES = []
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403


# --- requests


@pytest.mark.django_db
def test_requests_are_counted_by_route_pattern_not_by_path(client):
    route = resolve("/api/appointments/1/").route  # the router's pattern: (?P<pk>...)
    assert "1" not in route
    before = value("mediconnect_http_requests_total", method="GET", route=route, status="401")
    for pk in (101, 202, 303):
        assert client.get(f"/api/appointments/{pk}/").status_code == 401
    assert value("mediconnect_http_requests_total", method="GET", route=route, status="401") == before + 3
    latency = value("mediconnect_http_request_duration_seconds_count", method="GET", route=route, status="401")
    assert latency >= 3

    body = client.get("/metrics").content.decode()
    assert "/api/appointments/101/" not in body and "api/appointments/101" not in body
    client.get("/no/such/page/")
    assert value("mediconnect_http_requests_total", method="GET", route="<unmatched>", status="404") >= 1


# --- sockets and pushes


@pytest.mark.django_db(transaction=True)
async def test_the_socket_gauge_follows_sockets_opening_and_closing(patient):
    before = value("mediconnect_ws_connections")
    first, second = await open_socket(patient), await open_socket(patient)
    await ready(first), await ready(second)
    assert value("mediconnect_ws_connections") == before + 2

    await first.disconnect()
    assert value("mediconnect_ws_connections") == before + 1
    await second.disconnect()
    assert value("mediconnect_ws_connections") == before


@pytest.mark.django_db(transaction=True)
async def test_a_booking_counts_every_event_it_pushes(patient, doctor):
    before = value("mediconnect_events_pushed_total")
    await book(actor=patient, doctor=doctor)
    recorded = await Event.objects.acount()
    assert recorded >= 2  # the patient's and the doctor's
    assert value("mediconnect_events_pushed_total") == before + recorded


@pytest.mark.django_db(transaction=True)
async def test_a_push_the_layer_refuses_counts_as_a_failure(patient, doctor):
    before_failed, before_pushed = value("mediconnect_push_failures_total"), value("mediconnect_events_pushed_total")
    refusing = mock.AsyncMock(side_effect=ConnectionError("layer down"))
    with mock.patch.object(get_channel_layer(), "group_send", refusing):  # the layer the push uses
        await book(actor=patient, doctor=doctor)
    assert refusing.await_count >= 2  # the patient's events, the doctor's (and the queue's state)
    assert value("mediconnect_push_failures_total") == before_failed + refusing.await_count
    assert value("mediconnect_events_pushed_total") == before_pushed


@pytest.mark.django_db(transaction=True)
async def test_a_resume_counts_its_replayed_events_and_a_resync(patient, doctor, settings):
    await book(actor=patient, doctor=doctor)
    stored = await Event.objects.filter(user=patient).acount()
    before = value("mediconnect_replayed_events_total")
    socket = await open_socket(patient, query="last_event_id=0")
    await ready(socket)
    await frames_until(socket, lambda f: f.get("id") == stored)
    await socket.disconnect()
    assert value("mediconnect_replayed_events_total") == before + stored

    settings.WS_REPLAY_MAX = 1
    resyncs = value("mediconnect_resyncs_total")
    socket = await open_socket(patient, query="last_event_id=0")
    await ready(socket)
    await frames_until(socket, lambda f: f["type"] == "resync")
    await socket.disconnect()
    assert value("mediconnect_resyncs_total") == resyncs + 1


class RefusingLayer:
    """A channel layer whose group joins fail and whose receive waits forever."""

    async def new_channel(self):
        return "specific.hub!test"

    async def group_add(self, group, channel):
        raise ConnectionError("layer down")

    async def receive(self, channel):
        await asyncio.Future()


async def test_a_failed_group_join_counts_as_a_layer_error():
    hub = Hub(RefusingLayer())
    before = value("mediconnect_layer_errors_total", operation="join")
    with pytest.raises(ConnectionError):
        await hub.join("user.1", object())
    assert value("mediconnect_layer_errors_total", operation="join") == before + 1
    for task in list(hub._tasks):
        task.cancel()
    await asyncio.gather(*hub._tasks, return_exceptions=True)
