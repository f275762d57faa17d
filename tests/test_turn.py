"""The TURN credentials a call hands out, judged by coturn itself (a coturn of the run's own).

Each test asks coturn for a relay (ALLOCATE) and asserts on its answer: a relayed address, or the
error code it refuses with. What visits/turn.py computes is checked only through that verdict.
"""

import re
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.coturn import binding_answers, rest_credentials, turnserver_binary
from visits.turn import ice_servers


def turn_entry(servers: list[dict]) -> dict:
    (entry,) = [server for server in servers if "username" in server]
    return entry


@pytest.fixture
def credentials(coturn, settings):
    """The TURN username and credential `ice_servers` hands user 7 now, against the run's coturn."""
    coturn.configure(settings)
    servers, _expires_at = ice_servers(user_id=7)
    entry = turn_entry(servers)
    assert entry["urls"] == [coturn.turn_url]
    return entry["username"], entry["credential"]


@pytest.fixture
def peer():
    """A UDP socket on the loopback standing for the other side of a call."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


def test_ice_servers_credentials_get_a_relay_that_carries_data_both_ways(coturn, credentials, peer):
    username, credential = credentials
    with coturn.client() as client:
        answer = client.allocate(username, credential)
        assert answer.ok, (answer.error_code, answer.reason)
        assert client.relayed[0] == "127.0.0.1"
        assert client.permit(peer.getsockname()).ok

        client.send(peer.getsockname(), b"offer")
        data, source = peer.recvfrom(1024)
        assert (data, source) == (b"offer", client.relayed)  # the peer sees the relay, not the client

        peer.sendto(b"answer", client.relayed)
        assert client.receive() == (peer.getsockname(), b"answer")


def test_turnutils_uclient_relays_with_the_same_credentials(coturn, credentials):
    """A second, independent client (coturn's own test tool) allocates and relays with them."""
    username, credential = credentials
    result = subprocess.run(
        [
            turnserver_binary().replace("turnserver", "turnutils_uclient"),
            *("-p", str(coturn.port), "-u", username, "-w", credential),
            *("-y", "-n", "2", "-m", "1", "127.0.0.1"),  # -y: two allocations relaying to each other
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Cannot complete Allocation" not in result.stdout
    # Its summary: "start_mclient: tot_send_msgs=N, tot_recv_msgs=M" (every message came back relayed).
    sent, received = map(int, re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)$", result.stdout, re.M)[-1])
    assert sent > 0 and received == sent, result.stdout[-2000:]


def test_an_expired_credential_is_refused_by_coturn(coturn):
    past = int(time.time()) - 60
    username, credential = rest_credentials(secret=coturn.secret, expiry=past, user="7")
    with coturn.client() as client:
        assert client.allocate(username, credential).error_code == 401


def test_an_expired_credential_from_ice_servers_is_refused_by_coturn(coturn, settings):
    """`ice_servers` as it was two hours ago: its credentials expired an hour ago (TURN_TTL_SECONDS)."""
    coturn.configure(settings)
    settings.TURN_TTL_SECONDS = 3600
    servers, expires_at = ice_servers(user_id=7, now=datetime.now(UTC) - timedelta(hours=2))
    assert expires_at < datetime.now(UTC)
    entry = turn_entry(servers)
    with coturn.client() as client:
        assert client.allocate(entry["username"], entry["credential"]).error_code == 401


def _altered(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


@pytest.mark.parametrize("where", ["credential", "username"])
def test_an_altered_credential_is_refused_by_coturn(coturn, credentials, where):
    username, credential = credentials
    if where == "credential":
        credential = _altered(credential, 5)
    else:  # another user id under the same credential
        username = username[:-1] + "8"
    with coturn.client() as client:
        assert client.allocate(username, credential).error_code == 401


def test_a_credential_made_with_another_secret_is_refused_by_coturn(coturn, settings):
    coturn.configure(settings)
    settings.TURN_SECRET = coturn.secret + "-not"
    entry = turn_entry(ice_servers(user_id=7)[0])
    with coturn.client() as client:
        assert client.allocate(entry["username"], entry["credential"]).error_code == 401


def test_the_stun_entry_answers_binding_requests(coturn, settings):
    coturn.configure(settings)
    (stun,) = [server for server in ice_servers(user_id=7)[0] if "username" not in server]
    assert stun == {"urls": [coturn.stun_url]}
    host, port = stun["urls"][0].removeprefix("stun:").rsplit(":", 1)
    assert binding_answers(host, int(port), timeout=5)
