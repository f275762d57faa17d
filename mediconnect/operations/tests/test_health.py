import json
import socket
import subprocess
import sys

import pytest
from channels.layers import channel_layers
from channels.testing import HttpCommunicator
from django.conf import settings

from mediconnect.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
HOST = [(b"host", b"127.0.0.1")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def get(path):
    communicator = HttpCommunicator(application, "GET", path, headers=HOST)
    response = await communicator.get_response(timeout=10)
    return response["status"], json.loads(response["body"])


async def test_healthz_is_ok_on_the_configured_setup():
    assert await get("/healthz") == (200, {"database": "ok", "channel_layer": "ok"})


async def test_healthz_names_the_channel_layer_when_redis_is_unreachable(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_port()}/0"]},
        }
    }
    channel_layers.backends.clear()
    try:
        assert await get("/healthz") == (503, {"database": "ok", "channel_layer": "error"})
    finally:
        channel_layers.backends.clear()


@pytest.mark.parametrize(
    ("environment", "engine", "layer"),
    [
        ({}, "django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer"),
        (
            {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0"},
            "django.db.backends.postgresql",
            "channels_redis.core.RedisChannelLayer",
        ),
        (
            {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_LAYER": "pubsub"},
            "django.db.backends.sqlite3",
            "channels_redis.pubsub.RedisPubSubChannelLayer",
        ),
    ],
)
def test_database_and_layer_follow_the_environment(environment, engine, layer):
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps([settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND']]))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
        "ENV_FILE": "",
        "SECRET_KEY": "a-key-for-this-test",
        **environment,
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [engine, layer]


def test_production_refuses_to_start_without_a_secret_key():
    # DEBUG is off unless turned on, and then nothing in the repository can stand in for the key.
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediconnect.settings", "ENV_FILE": ""}
    code = "import django; django.setup()"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr


async def test_the_asgi_app_serves_the_login_page():
    communicator = HttpCommunicator(application, "GET", "/login/", headers=HOST)
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    assert b'name="email"' in response["body"]


def test_the_production_configuration_passes_the_deploy_checks():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
        "ENV_FILE": "",
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "-a-long-and-random-production-secret-value-0123456789",
        "ALLOWED_HOSTS": "clinic.example",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
