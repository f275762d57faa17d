"""A live server's `GET /api/appointments/{id}/call/` hands out TURN credentials that the run's coturn
accepts: fetched over HTTP from a daphne process configured from the environment, as deployed."""

import datetime

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import DoctorFactory, UserFactory
from appointments.models import Mode
from appointments.services import appointment_book
from tests.live import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture(scope="module")
def turn_server(coturn, django_db_setup, django_db_blocker):
    """A daphne process whose TURN_URLS, STUN_URLS and TURN_SECRET name the run's coturn."""
    instance = Daphne(**coturn.env())
    yield instance
    instance.stop()


@pytest.fixture
def visit_now():
    """A CONFIRMED video visit starting this minute (clinic time): its call is open."""
    patient = UserFactory()
    doctor = DoctorFactory()
    now = timezone.localtime()
    appointment = appointment_book(
        actor=patient,
        doctor=doctor,
        date=now.date(),
        time=datetime.time(now.hour, now.minute),
        reason="",
        mode=Mode.VIDEO,
    )
    return appointment, patient, doctor.user


def test_the_call_apis_credentials_get_a_relay_on_coturn_and_carry_data(turn_server, coturn, visit_now):
    appointment, patient, doctor = visit_now
    for user in (patient, doctor):
        status, body = turn_server.request(
            "GET", f"/api/appointments/{appointment.pk}/call/", token=str(AccessToken.for_user(user))
        )
        assert status == 200, body
        assert {"urls": [coturn.stun_url]} in body["ice_servers"]
        (turn,) = [entry for entry in body["ice_servers"] if "username" in entry]
        assert turn["urls"] == [coturn.turn_url] and turn["username"].endswith(f":{user.pk}")

        with coturn.client() as client:
            answer = client.allocate(turn["username"], turn["credential"])
            assert answer.ok, (answer.error_code, answer.reason)
            assert client.relayed[0] == "127.0.0.1"

        # The same credential, one character changed: coturn refuses it.
        altered = turn["credential"][:5] + ("A" if turn["credential"][5] != "A" else "B") + turn["credential"][6:]
        with coturn.client() as client:
            assert client.allocate(turn["username"], altered).error_code == 401
