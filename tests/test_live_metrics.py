"""GET /metrics scraped from a real daphne process: its own sockets, pushes and requests."""

import asyncio
import urllib.request

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from accounts.tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def scrape(server) -> dict[tuple, float]:
    """Every sample the process serves, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:  # noqa: S310
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_servers_metrics_count_its_sockets_pushes_and_requests(server, patient, doctor):
    access = await asyncio.to_thread(server.token, patient.email, PASSWORD)
    before = await asyncio.to_thread(scrape, server)
    sockets = [await websockets.connect(f"{server.ws_url}?token={access}", open_timeout=10) for _ in range(3)]
    try:
        for ws in sockets:
            await asyncio.wait_for(ws.recv(), timeout=10)  # ready
        during = await asyncio.to_thread(scrape, server)
        assert during[("mediconnect_ws_connections", ())] == before[("mediconnect_ws_connections", ())] + 3

        status, _ = await asyncio.to_thread(server.book, access, doctor.pk, "13:45")
        assert status == 201
    finally:
        for ws in sockets:
            await ws.close()

    after = await asyncio.to_thread(scrape, server)
    assert after[("mediconnect_ws_connections", ())] == before[("mediconnect_ws_connections", ())]
    pushed = ("mediconnect_events_pushed_total", ())
    assert after[pushed] >= before[pushed] + 2  # at least the patient's and the doctor's
    booked = (
        "mediconnect_http_requests_total",
        (("method", "POST"), ("route", "api/appointments/$"), ("status", "201")),
    )
    assert after[booked] == before.get(booked, 0) + 1
    labels = {name for key in after if key[0].startswith("mediconnect_") for name, _ in key[1]}
    assert labels <= {"method", "route", "status", "operation", "le"}  # nothing about a user
