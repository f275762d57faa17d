"""Repeated failed sign-ins and sign-ups are throttled (429 + Retry-After), per email and per client address."""

import time
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.contrib.auth import authenticate
from django.db import connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.throttling import LoginAttempt, client_address, parse_rate
from mediconnect.tests.test_settings import settings_under

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


def token(client, email, password, **extra):
    return client.post("/api/auth/token/", {"email": email, "password": password}, format="json", **extra)


def portal_login(client, email, password, **extra):
    return client.post("/login/", {"email": email, "password": password}, **extra)


def register(client, email, **extra):
    body = {"email": email, "password": "a-G00d-passphrase", "name": "New Patient"}
    return client.post("/api/auth/register/", body, format="json", **extra)


def signup(client, email, **extra):
    body = {"name": "New Patient", "email": email, "password": "a-G00d-passphrase", "password2": "a-G00d-passphrase"}
    return client.post("/signup/", body, **extra)


def assert_retry_after(response, window):
    assert 0 < int(response["Retry-After"]) <= window


# --- the client address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "10.0.0.9", "", "10.0.0.9"),
        ([], "10.0.0.9", "203.0.113.7", "10.0.0.9"),  # not a trusted proxy: its header is ignored
        (["10.0.0.9"], "10.0.0.9", "203.0.113.7", "203.0.113.7"),
        (["10.0.0.9"], "10.0.0.9", "1.2.3.4, 203.0.113.7", "203.0.113.7"),  # the client wrote 1.2.3.4 itself
        (["10.0.0.0/8"], "10.0.0.9", "198.51.100.2, 203.0.113.7, 10.1.1.1", "203.0.113.7"),  # two proxies
        (["10.0.0.9"], "10.0.0.9", "", "10.0.0.9"),  # no header: the proxy itself
        (["10.0.0.9"], "10.0.0.9", "garbage", "10.0.0.9"),
        (["2001:db8::1"], "2001:db8::1", "2001:db8::42", "2001:db8::42"),
    ],
)
def test_client_address_believes_only_trusted_proxies(settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


@pytest.mark.parametrize(
    ("rate", "parsed"), [("20/min", (20, 60)), ("5/s", (5, 1)), ("100/hour", (100, 3600)), ("1/day", (1, 86400))]
)
def test_rates_are_read_as_count_per_unit(rate, parsed):
    assert parse_rate(rate) == parsed
    assert parse_rate("off") is None
    with pytest.raises(ValueError):
        parse_rate("20 per minute")


# --- sign-in failures ----------------------------------------------------------------------------


def test_after_ten_failures_for_an_email_even_the_right_password_gets_429(patient, settings):
    api = APIClient()
    for _ in range(10):
        assert token(api, patient.email, WRONG).status_code == 401

    response = token(api, patient.email, PASSWORD)

    assert response.status_code == 429
    assert_retry_after(response, settings.LOGIN_FAILURE_WINDOW)
    assert "access" not in response.json() and response.json()["detail"]
    # the email is what is blocked (in any case), not the address: 10 is below the address limit
    assert token(api, patient.email.upper(), PASSWORD).status_code == 429
    other = UserFactory(email="other@example.com")
    assert token(api, other.email, PASSWORD).status_code == 200


def test_failures_count_for_the_account_however_its_address_is_spelled(settings):
    """Spellings that sign in to one account (case, full-width letters) share its failure count."""
    UserFactory(email="patient@test.com")
    api = APIClient()
    spellings = ["patient@test.com", "PATIENT@test.com", "\uff50\uff41\uff54\uff49\uff45\uff4e\uff54@test.com"]
    for i in range(10):
        assert token(api, spellings[i % 3], WRONG).status_code == 401

    assert token(api, "patient@test.com", PASSWORD).status_code == 429


def test_nine_failures_do_not_block_and_successes_do_not_count(patient, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    api = APIClient()
    for _ in range(5):
        assert token(api, patient.email, PASSWORD).status_code == 200
    for _ in range(2):
        assert token(api, patient.email, WRONG).status_code == 401
    assert token(api, patient.email, PASSWORD).status_code == 200
    assert token(api, patient.email, WRONG).status_code == 401
    assert token(api, patient.email, PASSWORD).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_parallel_successful_sign_ins_from_one_address_are_never_refused(settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    settings.LOGIN_FAILURES_PER_EMAIL = 2
    users = UserFactory.create_batch(4)

    def sign_in(n):
        response = token(APIClient(), users[n % 4].email, PASSWORD)
        connection.close()
        return response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(sign_in, range(12)))

    assert codes == [200] * 12


def test_a_right_password_checked_while_the_limit_was_reached_is_refused(client, patient, settings):
    """Parallel guesses: others' failures land while this sign-in is being checked."""
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    real_authenticate = authenticate

    def meanwhile_three_failures(request=None, **credentials):
        for _ in range(3):  # the API passes the email by its field's name, Django's login form as `username`
            LoginAttempt(request, credentials.get("email", credentials.get("username"))).failed()
        return real_authenticate(request, **credentials)

    with mock.patch("rest_framework_simplejwt.serializers.authenticate", meanwhile_three_failures):
        response = token(APIClient(), patient.email, PASSWORD)
    assert response.status_code == 429 and "access" not in response.json()

    settings.LOGIN_FAILURES_PER_EMAIL = 6
    with mock.patch("django.contrib.auth.forms.authenticate", meanwhile_three_failures):
        response = portal_login(client, patient.email, PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_requests_that_try_no_password_do_not_count(client, patient, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 2
    api = APIClient()
    for _ in range(4):
        assert token(api, patient.email, "").status_code == 400
        assert portal_login(client, patient.email, "").status_code == 400
    assert token(api, patient.email, PASSWORD).status_code == 200


def test_failures_from_one_address_block_it_for_every_email(patient, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    api = APIClient()
    for n in range(4):
        assert token(api, f"guess{n}@example.com", WRONG).status_code == 401

    response = token(api, patient.email, PASSWORD)
    assert response.status_code == 429
    assert_retry_after(response, settings.LOGIN_FAILURE_WINDOW)
    # another client address is not blocked
    assert token(api, patient.email, PASSWORD, REMOTE_ADDR="192.0.2.50").status_code == 200


def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit(patient, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    api = APIClient()
    for n in range(4):
        response = token(api, f"guess{n}@example.com", WRONG, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert response.status_code == 401

    assert token(api, patient.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_counts_apart(patient, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    api = APIClient()
    for n in range(4):
        assert token(api, f"guess{n}@example.com", WRONG, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401

    assert token(api, patient.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert token(api, patient.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


def test_the_portal_login_is_throttled_with_a_message(client, patient, settings):
    for _ in range(10):
        assert portal_login(client, patient.email, WRONG).status_code == 400

    response = portal_login(client, patient.email, PASSWORD)

    assert response.status_code == 429
    assert_retry_after(response, settings.LOGIN_FAILURE_WINDOW)
    assert b'data-testid="login-throttled"' in response.content
    assert b"Too many attempts" in response.content and b"15 minutes" in response.content
    assert 'name="email"' in response.content.decode() and patient.email in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_throttled_login_page_speaks_bangla(client, patient):
    for _ in range(10):
        portal_login(client, patient.email, WRONG)
    response = portal_login(client, patient.email, PASSWORD, HTTP_ACCEPT_LANGUAGE="bn")
    assert response.status_code == 429
    assert "অনেকবার" in response.content.decode()


def test_the_admin_sign_in_still_signs_staff_in(client, admin_user):
    response = client.post("/admin/login/?next=/admin/", {"username": admin_user.email, "password": "x-Str0ng-pass"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_sign_in_is_throttled_with_the_same_counts(client, admin_user):
    for _ in range(5):
        response = client.post("/admin/login/", {"username": admin_user.email, "password": WRONG})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    for _ in range(5):
        portal_login(client, admin_user.email, WRONG)

    response = client.post("/admin/login/", {"username": admin_user.email, "password": "x-Str0ng-pass"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/login/").status_code == 200


def test_failures_on_the_api_and_the_portal_count_together(client, patient):
    api = APIClient()
    for _ in range(5):
        token(api, patient.email, WRONG)
        portal_login(client, patient.email, WRONG)

    assert token(api, patient.email, PASSWORD).status_code == 429
    assert portal_login(client, patient.email, PASSWORD).status_code == 429


def test_once_the_window_has_passed_the_right_password_works_again(patient, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "window"}}
    settings.LOGIN_FAILURES_PER_EMAIL = 2
    api = APIClient()
    for _ in range(2):
        token(api, patient.email, WRONG)
    assert token(api, patient.email, PASSWORD).status_code == 429

    later = time.time() + settings.LOGIN_FAILURE_WINDOW + 1
    with mock.patch("time.time", return_value=later):
        assert token(api, patient.email, PASSWORD).status_code == 200


def test_an_unreachable_cache_throttles_nobody(patient, settings, unused_tcp_port):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_tcp_port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    api = APIClient()
    assert token(api, patient.email, WRONG).status_code == 401
    assert token(api, patient.email, PASSWORD).status_code == 200
    assert register(api, "new@example.com").status_code == 201


# --- sign-ups ------------------------------------------------------------------------------------


def test_register_beyond_the_rate_is_429_and_creates_nobody(settings):
    settings.REGISTER_RATE = "2/min"
    api = APIClient()
    assert register(api, "one@example.com").status_code == 201
    assert register(api, "two@example.com").status_code == 201

    response = register(api, "three@example.com")

    assert response.status_code == 429
    assert_retry_after(response, 60)
    assert response.json()["detail"]
    assert not User.objects.filter(email="three@example.com").exists()
    assert register(api, "three@example.com", REMOTE_ADDR="192.0.2.50").status_code == 201


def test_register_rate_off_does_not_limit(settings):
    settings.REGISTER_RATE = "off"
    api = APIClient()
    for n in range(25):
        assert register(api, f"p{n}@example.com").status_code == 201


def test_the_default_register_rate_is_twenty_a_minute():
    api = APIClient()
    for n in range(20):
        assert register(api, f"p{n}@example.com").status_code == 201
    assert register(api, "p20@example.com").status_code == 429


def test_portal_sign_ups_share_the_api_rate(settings):
    settings.REGISTER_RATE = "2/hour"
    client = Client()
    assert register(APIClient(), "one@example.com").status_code == 201
    assert signup(client, "two@example.com").status_code == 302
    client.logout()

    response = signup(client, "three@example.com")

    assert response.status_code == 429
    assert_retry_after(response, 3600)
    assert b'data-testid="signup-throttled"' in response.content
    assert not User.objects.filter(email="three@example.com").exists()
    assert register(APIClient(), "four@example.com").status_code == 429


# --- settings ------------------------------------------------------------------------------------

THROTTLE_SETTINGS = [
    "LOGIN_FAILURES_PER_EMAIL",
    "LOGIN_FAILURES_PER_ADDRESS",
    "LOGIN_FAILURE_WINDOW",
    "REGISTER_RATE",
    "TRUSTED_PROXIES",
    "CACHES",
]


def test_throttle_settings_defaults_count_in_local_memory_without_redis():
    seen = settings_under({"SECRET_KEY": "k"}, THROTTLE_SETTINGS)
    assert {k: v for k, v in seen.items() if k != "CACHES"} == {
        "LOGIN_FAILURES_PER_EMAIL": 10,
        "LOGIN_FAILURES_PER_ADDRESS": 30,
        "LOGIN_FAILURE_WINDOW": 900,
        "REGISTER_RATE": "20/min",
        "TRUSTED_PROXIES": [],
    }
    assert seen["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


def test_throttle_settings_from_the_environment_count_in_redis_apart_from_the_layer():
    environment = {
        "SECRET_KEY": "k",
        "LOGIN_FAILURE_WINDOW": "2h",
        "REGISTER_RATE": "off",
        "TRUSTED_PROXIES": "10.0.0.1,10.1.0.0/16",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
    }
    seen = settings_under(environment, THROTTLE_SETTINGS)
    assert (seen["LOGIN_FAILURE_WINDOW"], seen["REGISTER_RATE"]) == (7200, "off")
    assert seen["TRUSTED_PROXIES"] == ["10.0.0.1", "10.1.0.0/16"]
    cache = seen["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/3"
    assert cache["KEY_PREFIX"] == "mediconnect-cache"  # not a prefix the layer or presence write under


@pytest.mark.parametrize(
    ("name", "value"), [("LOGIN_FAILURE_WINDOW", "soon"), ("REGISTER_RATE", "20/fortnight"), ("TRUSTED_PROXIES", "x")]
)
def test_a_malformed_throttle_setting_stops_the_server_from_starting(name, value):
    with pytest.raises(AssertionError, match=name):
        settings_under({"SECRET_KEY": "k", name: value}, [name])
