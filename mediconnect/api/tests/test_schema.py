"""The OpenAPI schema tells the truth: every status each operation answers, and times as HH:MM.

schemathesis drives every operation of /api/schema/ as a patient, a doctor and an admin through the
WSGI application in this process, with positive and negative (invalid) inputs, and checks that no
answer is a 5xx, that every status code is one the schema declares for that operation, and that
each body matches the schema declared for its status.
"""

import datetime
import re

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from appointments.services import appointment_book

# Examples per operation and role: valid inputs, then invalid ones (about 400 requests in all, most
# of the time spent generating them). Seeded (derandomize), so a run repeats the one before it.
EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def schema_doc(client):
    return client.get("/api/schema/?format=json").json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_every_operation_declares_its_error_statuses(schema_doc):
    for method, path, operation in _operations(schema_doc):
        codes = set(operation["responses"])
        assert "503" in codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method in {"POST", "PUT", "PATCH"}:
            assert "400" in codes, (method, path)
        if operation.get("security") and {} not in operation["security"]:
            assert {"401", "403"} <= codes, (method, path)
    responses = {(m, p): set(o["responses"]) for m, p, o in _operations(schema_doc)}
    assert "409" in responses[("POST", "/api/appointments/")]
    assert "429" in responses[("POST", "/api/auth/token/")]
    assert "429" in responses[("POST", "/api/auth/register/")]
    assert "200" in responses[("DELETE", "/api/appointments/{id}/")]  # a cancel answers the appointment


def test_times_are_declared_as_the_hh_mm_strings_the_api_sends(schema_doc, api, patient, doctor):
    time_schemas = [
        props["time"]
        for component in schema_doc["components"]["schemas"].values()
        if "time" in (props := component.get("properties", {}))
    ]
    assert time_schemas and all(s.get("format") != "time" and "pattern" in s for s in time_schemas)
    pattern = re.compile(time_schemas[0]["pattern"])
    booked = api(patient).post(
        "/api/appointments/",
        {"doctor": doctor.pk, "date": (timezone.localdate() + datetime.timedelta(days=1)).isoformat(), "time": "09:30"},
        format="json",
    )
    assert booked.status_code == 201 and pattern.fullmatch(booked.json()["time"])


def _token(user) -> str:
    return str(AccessToken.for_user(user))


def _run(schema, headers) -> list[str]:
    """Every operation, each mode: the failures as text (empty when the API keeps its schema)."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                case.call_and_validate(
                    headers=headers, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
                )

            try:
                check()
            except Exception as exc:  # noqa: BLE001 - collected, then reported all at once
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:400]}")
    return failures


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["patient", "doctor", "admin"])
def test_schemathesis_finds_no_5xx_and_no_undeclared_status(role, patient, doctor, admin_user):
    appointment_book(
        actor=patient,
        doctor=doctor,
        patient=patient,
        date=timezone.localdate() + datetime.timedelta(days=1),
        time=datetime.time(9, 0),
        reason="",
    )
    user = {"patient": patient, "doctor": doctor.user, "admin": admin_user}[role]
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    failures = _run(schema, {"Authorization": f"Bearer {_token(user)}"})
    assert not failures, "\n".join(failures)
