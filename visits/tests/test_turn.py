from datetime import UTC, datetime

import pytest

from visits.turn import ice_servers

NOW = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)


def test_nothing_configured_means_no_ice_servers(settings):
    settings.TURN_URLS, settings.STUN_URLS, settings.TURN_SECRET = [], [], ""
    servers, expires_at = ice_servers(user_id=7, now=NOW)
    assert servers == []
    assert (expires_at - NOW).total_seconds() == settings.TURN_TTL_SECONDS


@pytest.mark.parametrize("ttl", [60, 3600])
def test_turn_credentials_name_the_expiry_and_the_user_and_never_carry_the_secret(settings, ttl):
    settings.TURN_URLS = ["turn:127.0.0.1:3478?transport=udp"]
    settings.STUN_URLS = ["stun:127.0.0.1:3478"]
    settings.TURN_SECRET, settings.TURN_TTL_SECONDS = "s3cret-of-coturn", ttl

    servers, expires_at = ice_servers(user_id=7, now=NOW)

    assert servers[0] == {"urls": ["stun:127.0.0.1:3478"]}
    turn = servers[1]
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    assert turn["username"] == f"{int(NOW.timestamp()) + ttl}:7"
    assert len(turn["credential"]) == 28  # base64 of a 20-byte HMAC-SHA1
    assert "s3cret" not in str(servers)
    assert expires_at.timestamp() == NOW.timestamp() + ttl


def test_the_credential_is_coturns_hmac_sha1_of_the_username(settings):
    settings.TURN_URLS, settings.TURN_SECRET = ["turn:127.0.0.1:3478"], "north"
    (turn,), _ = ice_servers(user_id=1, now=datetime.fromtimestamp(1_800_000_000 - 3600, UTC))
    assert turn["username"] == "1800000000:1"
    # `printf 1800000000:1 | openssl dgst -sha1 -hmac north -binary | base64`
    assert turn["credential"] == "50SeIAMotPvr8pmFTyIwFGMSoAA="
