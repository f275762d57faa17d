"""deploy/coturn.conf: the hardening it must carry, and coturn running with it (on the loopback).

turnserver has no check-only mode, so the last tests start it with the file as written, only the
machine's own lines (addresses, ports, certificate, syslog, files) swapped for a test's, and ask it
for relays and permissions: it accepts every line, and it refuses private and loopback peers.
"""

import itertools
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.coturn import Coturn, free_port, free_port_range, require_turnserver, rest_credentials

USER_IDS = itertools.count(1)
CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "coturn.conf"
# The lines that name this machine (or its certificate and log): a test's coturn has its own.
MACHINE_KEYS = {
    "listening-ip",
    "external-ip",
    "relay-ip",
    "listening-port",
    "tls-listening-port",
    "min-port",
    "max-port",
    "cert",
    "pkey",
    "syslog",
    "pidfile",
    "userdb",
}
PRIVATE_RANGES = {
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "224.0.0.0-255.255.255.255",
    "::1-::1",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
}


def lines(text: str) -> list[tuple[str, str]]:
    """The file's settings as (name, value), comments and blank lines left out."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            found.append((name.strip(), value.strip()))
    return found


def values(name: str) -> list[str]:
    return [value for key, value in lines(CONFIG.read_text()) if key == name]


def test_only_shared_secret_credentials_are_accepted_and_the_secret_is_not_in_the_file():
    names = {name for name, _ in lines(CONFIG.read_text())}
    assert "use-auth-secret" in names
    assert not names & {"no-auth", "static-auth-secret", "lt-cred-mech", "user"}
    assert values("realm") and values("stale-nonce")
    assert "fingerprint" in names


def test_no_relay_reaches_loopback_private_or_reserved_addresses():
    names = {name for name, _ in lines(CONFIG.read_text())}
    assert "allow-loopback-peers" not in names  # test-only (tests/support/coturn.py)
    assert "no-multicast-peers" in names
    assert PRIVATE_RANGES <= set(values("denied-peer-ip"))
    assert values("allowed-peer-ip") == []  # only ever one address, and commented out here


def test_tls_quotas_ports_and_logging():
    names = {name for name, _ in lines(CONFIG.read_text())}
    assert values("tls-listening-port") == ["5349"] and values("cert") and values("pkey")
    assert {"no-tlsv1", "no-tlsv1_1", "no-cli", "syslog"} <= names
    assert "no-tls" not in names
    assert int(values("user-quota")[0]) > 0 and int(values("total-quota")[0]) > 0
    assert int(values("bps-capacity")[0]) > 0 and int(values("max-bps")[0]) > 0
    low, high = int(values("min-port")[0]), int(values("max-port")[0])
    assert 1024 < low < high and int(values("total-quota")[0]) <= high - low + 1
    assert re.search(r"firewall", CONFIG.read_text())


def on_loopback(directory: Path, *, port: int, relay_ports: tuple[int, int], secret: str) -> str:
    """deploy/coturn.conf with the machine's lines swapped for a test's: loopback, no TLS, files here."""
    kept = [
        line for line in CONFIG.read_text().splitlines() if line.strip().partition("=")[0].strip() not in MACHINE_KEYS
    ]
    return "\n".join(
        [
            *kept,
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            f"listening-port={port}",
            f"min-port={relay_ports[0]}",
            f"max-port={relay_ports[1]}",
            f"static-auth-secret={secret}",  # as the service appends it from TURN_SECRET
            "no-tls",
            f"pidfile={directory / 'turnserver.pid'}",
            f"userdb={directory / 'turnserver.db'}",
            f"log-file={directory / 'turnserver.log'}",
            "simple-log",
            "no-stdout-log",
            "",
        ]
    )


@pytest.fixture(scope="module")
def production_coturn(tmp_path_factory):
    require_turnserver()
    directory = tmp_path_factory.mktemp("coturn-production")
    server = Coturn(directory=directory, port=free_port(), relay_ports=free_port_range(16))
    server.config = directory / "turnserver.conf"
    server.config.write_text(
        on_loopback(directory, port=server.port, relay_ports=server.relay_ports, secret=server.secret)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def allocated(production_coturn):
    """A client holding a relay on the production-configured coturn, with credentials of a user of its
    own (user-quota counts a username's allocations, and coturn frees one about a second after it ends)."""
    user = str(next(USER_IDS))
    username, credential = rest_credentials(secret=production_coturn.secret, expiry=2_000_000_000, user=user)
    with production_coturn.client() as client:
        answer = client.allocate(username, credential)
        assert answer.ok, (answer.error_code, answer.reason)
        yield client


def test_coturn_accepts_every_line_of_the_file(production_coturn):
    log = production_coturn.log()
    assert "Bad configuration format" not in log
    assert "Black listing: 10.0.0.0-10.255.255.255" in log


def test_it_refuses_wrong_credentials(production_coturn):
    username, credential = rest_credentials(secret="not-the-secret", expiry=2_000_000_000, user="7")
    with production_coturn.client() as client:
        assert client.allocate(username, credential).error_code == 401


@pytest.mark.parametrize(
    "peer",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.1", "224.0.0.1"],
)
def test_it_refuses_to_relay_to_loopback_private_or_reserved_addresses(allocated, peer):
    answer = allocated.permit((peer, 9))
    assert answer.error_code == 403, (answer.kind, answer.error_code, answer.reason)


def test_it_relays_to_a_public_address(allocated):
    answer = allocated.permit(("8.8.8.8", 9))
    assert answer.ok, (answer.error_code, answer.reason)  # a permission only: nothing is sent


def test_the_service_writes_the_file_and_the_secret_from_the_environment_into_a_private_copy(tmp_path):
    """mediconnect-coturn.service's ExecStartPre, run as systemd would (its `%%` and `$$` unescaped),
    on this checkout's file and a temporary directory in place of /srv/mediconnect and /run."""
    unit = (CONFIG.parent / "systemd" / "mediconnect-coturn.service").read_text()
    (command,) = re.findall(r"^ExecStartPre=/bin/sh -c '(.*)'$", unit, re.M)
    command = command.replace("%%", "%").replace("$$", "$").replace("\\\\", "\\")
    command = command.replace("/srv/mediconnect/deploy/coturn.conf", str(CONFIG))
    command = command.replace("/run/mediconnect-coturn", str(tmp_path))
    secret = "a-secret with $pecial chars"
    subprocess.run(["/bin/sh", "-c", command], env={"TURN_SECRET": secret}, check=True, timeout=10)

    written = tmp_path / "turnserver.conf"
    assert written.stat().st_mode & 0o777 == 0o600
    assert written.read_text() == CONFIG.read_text() + f"static-auth-secret={secret}\n"
    assert re.search(r"^ExecStart=/usr/bin/turnserver -c /run/mediconnect-coturn/turnserver.conf$", unit, re.M)
    # The secret reaches turnserver through that file only, never its command line.
    assert "TURN_SECRET" not in re.search(r"^ExecStart=.*$", unit, re.M).group(0)
