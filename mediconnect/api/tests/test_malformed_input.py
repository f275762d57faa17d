"""Hostile bodies, frames and path ids: a 400 (or 404) with a reason, an `error` frame, never a 500 or 1011."""

import json

import pytest
from rest_framework.test import APIClient

from tests.support.wsutil import frame, open_socket, ready

HUGE = 2147483648  # one past PostgreSQL's integer


def _post_raw(client: APIClient, path: str, body: str):
    return client.generic("POST", path, body.encode(), content_type="application/json")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 60_000,
        '{"doctor": 1e400, "date": "2030-01-01", "time": "09:00"}',
        '{"doctor": NaN, "date": "2030-01-01", "time": "09:00"}',
        '{"doctor": -Infinity, "date": "2030-01-01", "time": "09:00"}',
        f'{{"doctor": {HUGE}, "date": "2030-01-01", "time": "09:00"}}',
        f'{{"doctor": 1, "extra": [{{"n": {HUGE}}}], "date": "2030-01-01", "time": "09:00"}}',
        '{"reason": "\\ud800", "date": "2030-01-01", "time": "09:00"}',
    ],
)
def test_a_malformed_booking_body_is_a_400_with_the_reason(api, patient, body):
    response = _post_raw(api(patient), "/api/appointments/", body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_a_deeply_nested_body_is_a_400_on_every_json_route(api, doctor):
    client = api(doctor)
    for path in (f"/api/queues/{doctor.pk}/", "/api/auth/token/", "/api/auth/register/"):
        response = _post_raw(client, path, "{" * 30_000)
        assert response.status_code == 400, path
        assert "nested deeper" in response.json()["detail"]


def test_the_queue_refuses_numbers_past_its_bounds_in_any_encoding(api, doctor):
    client = api(doctor)
    path = f"/api/queues/{doctor.pk}/"
    response = _post_raw(client, path, json.dumps({"current_queue": HUGE}))
    assert response.status_code == 400
    # Form data is not JSON: the serializer's bounds refuse what the parser cannot see.
    response = client.post(path, {"current_queue": str(HUGE)})
    assert response.status_code == 400 and "current_queue" in response.json()
    response = client.post(path, {"current_queue": 1, "estimated_wait": 601}, format="json")
    assert response.status_code == 400 and "estimated_wait" in response.json()
    response = client.post(path, {"current_queue": 2147483647, "estimated_wait": 600}, format="json")
    assert response.status_code == 200
    assert response.json()["current_queue"] == 2147483647 and response.json()["estimated_wait"] == 600


def test_a_booking_with_huge_ids_in_form_data_is_a_400(api, patient, doctor, tomorrow):
    response = api(patient).post(
        "/api/appointments/", {"doctor": "9" * 30, "date": tomorrow.isoformat(), "time": "09:00"}
    )
    assert response.status_code == 400 and "doctor" in response.json()
    response = api(doctor).post(
        "/api/appointments/",
        {"doctor": doctor.pk, "patient": str(HUGE), "date": tomorrow.isoformat(), "time": "09:00"},
    )
    assert response.status_code == 400 and "patient" in response.json()


@pytest.mark.parametrize("number", [str(HUGE), "9" * 30])
def test_ids_past_the_database_range_in_paths_are_404(api, admin_user, doctor, tomorrow, number):
    client = api(admin_user)
    for method, path in [
        ("get", f"/api/appointments/{number}/"),
        ("patch", f"/api/appointments/{number}/"),
        ("delete", f"/api/appointments/{number}/"),
        ("get", f"/api/doctors/{number}/"),
        ("get", f"/api/doctors/{number}/slots/?date={tomorrow.isoformat()}"),
        ("get", f"/api/queues/{number}/"),
        ("post", f"/api/queues/{number}/"),
        ("post", f"/api/queues/{number}/next/"),
        ("post", f"/api/notifications/{number}/read/"),
    ]:
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path, response.status_code)


def test_ids_that_are_not_numbers_and_unknown_api_paths_are_a_json_404(api, admin_user):
    client = api(admin_user)
    for method, path in [
        ("get", "/api/appointments/abc/"),
        ("patch", "/api/appointments/1e3/"),
        ("get", "/api/doctors/-1/"),
        ("post", "/api/notifications/abc/read/"),
        ("get", "/api/no-such-thing/"),
    ]:
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert response["Content-Type"] == "application/json" and set(response.json()) == {"detail"}, path


def test_an_unknown_page_outside_the_api_is_djangos_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
async def test_hostile_frames_get_bad_request_and_the_socket_stays_open(patient, doctor):
    socket = await open_socket(patient)
    await ready(socket)
    for text in [
        "[" * 60_000,
        '{"type": "join_queue", "data": {"doctor_id": 1e400}}',
        '{"type": "join_queue", "data": {"doctor_id": NaN}}',
        f'{{"type": "join_queue", "data": {{"doctor_id": {HUGE}}}}}',
        '{"type": "join_queue", "data": {"doctor_id": "\\udc00"}}',
    ]:
        await socket.send_to(text_data=text)
        error = await frame(socket)
        assert error["type"] == "error" and error["data"]["code"] == "bad_request", text[:60]
    # Still open and serving: a real request gets its answer.
    await socket.send_json_to({"type": "join_queue", "data": {"doctor_id": doctor.pk}})
    answer = await frame(socket)
    assert answer["type"] == "error" and answer["data"]["code"] == "forbidden"  # no appointment with them
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_queue_numbers_past_the_bound_are_refused_over_the_socket(doctor):
    socket = await open_socket(doctor.user)
    await ready(socket)
    await socket.send_json_to({"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": HUGE - 1}})
    await socket.send_json_to(
        {"type": "update_queue", "data": {"doctor_id": doctor.pk, "current_queue": 1, "estimated_wait": 601}}
    )
    error = await frame(socket)
    assert error["type"] == "error" and error["data"]["code"] == "bad_request"
    assert "600" in error["data"]["message"] and error["data"]["request"] == "update_queue"
    await socket.disconnect()


@pytest.mark.parametrize("body", ["-22643295", "[]", '"patient"', "null", "true"])
def test_a_body_that_is_not_an_object_is_a_400(api, patient, doctor, body):
    for client, path in [
        (api(patient), "/api/appointments/"),
        (api(doctor), f"/api/queues/{doctor.pk}/"),
        (api(patient), "/api/me/language/"),
        (APIClient(), "/api/auth/register/"),
        (APIClient(), "/api/auth/token/"),
        (APIClient(), "/api/auth/token/refresh/"),
    ]:
        response = _post_raw(client, path, body)
        assert response.status_code == 400, (path, body, response.status_code)
