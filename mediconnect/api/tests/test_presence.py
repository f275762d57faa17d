"""The admin's presence views: how many users have a socket open, and whether one user has."""

import pytest
import time_machine
from asgiref.sync import async_to_sync

from notifications import presence

pytestmark = pytest.mark.usefixtures("own_layer_prefix")

T0 = 1_900_000_000.0


@pytest.fixture
def announce():
    """`announce(node, online=[...], offline=[...])`, as a server process's hub does; undone after the test."""
    made = []

    def _announce(node, *, online=(), offline=()):
        made.append((node, set(online)))
        async_to_sync(presence.backend().announce)(node, online=online, offline=offline)

    yield _announce
    for node, users in made:
        async_to_sync(presence.backend().announce)(node, online=(), offline=users)


def test_an_admin_sees_who_is_connected_across_nodes(api, admin_user, patient, patient2, doctor, announce):
    announce("a", online=[patient.pk, doctor.user.pk])
    announce("b", online=[patient.pk])
    client = api(admin_user)
    assert client.get("/api/presence/").json() == {"connected_users": 2}
    assert client.get(f"/api/presence/{patient.pk}/").json() == {"user_id": patient.pk, "online": True}
    assert client.get(f"/api/presence/{patient2.pk}/").json() == {"user_id": patient2.pk, "online": False}

    announce("a", offline=[patient.pk])  # still on b
    assert client.get(f"/api/presence/{patient.pk}/").json()["online"] is True
    announce("b", offline=[patient.pk])
    assert client.get(f"/api/presence/{patient.pk}/").json()["online"] is False
    assert client.get("/api/presence/").json() == {"connected_users": 1}


def test_a_killed_nodes_users_drop_out_after_the_ttl(api, admin_user, patient, announce, settings):
    if not settings.REDIS_URL:
        pytest.skip("without Redis presence is this one process's: it cannot die and leave entries")
    with time_machine.travel(T0, tick=False) as clock:
        client = api(admin_user)  # a token of the travelled clock's time
        announce("killed", online=[patient.pk])
        clock.shift(presence.TTL_SECONDS + 1)
        assert client.get(f"/api/presence/{patient.pk}/").json()["online"] is False
        assert client.get("/api/presence/").json() == {"connected_users": 0}


@pytest.mark.parametrize("path", ["/api/presence/", "/api/presence/1/"])
def test_presence_is_for_admins_only(api, patient, doctor, path):
    assert api(patient).get(path).status_code == 403
    assert api(doctor).get(path).status_code == 403
