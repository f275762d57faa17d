"""Settings read from the environment, each case in a fresh process that reads no `.env` file."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

HTTPS_SETTINGS = ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"]


def settings_under(environment: dict, names: list[str]) -> dict:
    """The named settings as a process started with only `environment` (and no `.env`) sees them."""
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}))"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediconnect.settings", "ENV_FILE": "", **environment}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_debug_is_off_unless_turned_on():
    assert settings_under({"SECRET_KEY": "k"}, ["DEBUG"]) == {"DEBUG": False}
    assert settings_under({"DEBUG": "true"}, ["DEBUG"]) == {"DEBUG": True}


def test_debug_without_a_key_gets_a_random_one_not_a_known_one():
    first = settings_under({"DEBUG": "true"}, ["SECRET_KEY"])["SECRET_KEY"]
    second = settings_under({"DEBUG": "true"}, ["SECRET_KEY"])["SECRET_KEY"]
    assert len(first) >= 50
    assert first != second


def test_the_key_comes_from_the_key_file_and_an_explicit_key_wins(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("the-generated-key\n")
    assert settings_under({"SECRET_KEY_FILE": str(key_file)}, ["SECRET_KEY"]) == {"SECRET_KEY": "the-generated-key"}
    both = {"SECRET_KEY_FILE": str(key_file), "SECRET_KEY": "the-explicit-key"}
    assert settings_under(both, ["SECRET_KEY"]) == {"SECRET_KEY": "the-explicit-key"}


def test_the_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("SECRET_KEY=from-the-file\nTIME_ZONE=UTC\n")
    seen = settings_under({"ENV_FILE": str(env_file), "TIME_ZONE": "Asia/Dhaka"}, ["SECRET_KEY", "TIME_ZONE"])
    assert seen == {"SECRET_KEY": "from-the-file", "TIME_ZONE": "Asia/Dhaka"}


def test_a_deployment_is_https_only_by_default():
    assert settings_under({"SECRET_KEY": "k"}, HTTPS_SETTINGS) == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
    }


@pytest.mark.django_db(transaction=True)
def test_behind_tls_a_plain_http_health_check_gets_its_answer_and_pages_still_redirect(client, settings):
    deployed = settings_under({"SECRET_KEY": "k"}, ["SECURE_SSL_REDIRECT", "SECURE_REDIRECT_EXEMPT"])
    assert deployed["SECURE_SSL_REDIRECT"] is True
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = deployed["SECURE_REDIRECT_EXEMPT"]

    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"database": "ok", "channel_layer": "ok"})
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    page = client.get("/login/")
    assert (page.status_code, page["Location"]) == (301, "https://testserver/login/")
    assert client.get("/healthz/").status_code == 301  # the exemption is the path exactly


@pytest.mark.parametrize("debug", ["false", "true"])
def test_local_http_serves_plain_http(debug):
    seen = settings_under({"SECRET_KEY": "k", "DEBUG": debug, "LOCAL_HTTP": "true"}, HTTPS_SETTINGS)
    assert not any(seen.values()), seen


def test_local_http_leaves_each_setting_overridable():
    seen = settings_under({"SECRET_KEY": "k", "LOCAL_HTTP": "true", "SESSION_COOKIE_SECURE": "true"}, HTTPS_SETTINGS)
    assert seen == {
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
    }


def test_the_example_env_file_copied_as_it_stands_starts_the_demo(tmp_path):
    # `cp .env.example .env` then `make run`: the key comes from the file make generates.
    key = tmp_path / "secret_key"
    key.write_text("a-generated-key-" * 4)
    seen = settings_under(
        {"ENV_FILE": str(settings.BASE_DIR / ".env.example"), "SECRET_KEY_FILE": str(key)},
        ["DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "REGISTER_RATE"],
    )
    assert seen == {
        "DEBUG": False,
        "SECRET_KEY": "a-generated-key-" * 4,
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "REGISTER_RATE": "20/min",
    }


def test_reminder_offsets_take_units_and_an_empty_list():
    environment = {"SECRET_KEY": "k", "REMINDER_OFFSETS": "24h, 2h,90m,30s,1d"}
    assert settings_under(environment, ["REMINDER_OFFSETS"]) == {"REMINDER_OFFSETS": [86400, 7200, 5400, 30]}
    assert settings_under({"SECRET_KEY": "k", "REMINDER_OFFSETS": ""}, ["REMINDER_OFFSETS"]) == {"REMINDER_OFFSETS": []}


@pytest.mark.parametrize("bad", ["2x", "-2h", "90"])
def test_a_bad_reminder_offset_stops_the_server_with_a_clear_error(bad):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediconnect.settings", "ENV_FILE": ""}
    env.update(SECRET_KEY="k", REMINDER_OFFSETS=f"24h,{bad}")
    code = "import django; django.setup()"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert out.returncode != 0
    assert "ImproperlyConfigured: REMINDER_OFFSETS must be durations" in out.stderr
    assert repr(bad) in out.stderr


def test_the_doctors_digest_is_off_by_default_and_a_bad_time_is_refused():
    assert settings_under({"SECRET_KEY": "k"}, ["DOCTOR_DIGEST_AT"]) == {"DOCTOR_DIGEST_AT": ""}
    assert settings_under({"SECRET_KEY": "k", "DOCTOR_DIGEST_AT": "7:30"}, ["DOCTOR_DIGEST_AT"]) == {
        "DOCTOR_DIGEST_AT": "07:30"
    }
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediconnect.settings", "ENV_FILE": ""}
    env.update(SECRET_KEY="k", DOCTOR_DIGEST_AT="25:00")
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "DOCTOR_DIGEST_AT must be a time such as 07:30, not '25:00'" in out.stderr
