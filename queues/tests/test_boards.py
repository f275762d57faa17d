"""Waiting-room display boards: the public REST view, the page, the admin and the demo board."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from appointments.models import Appointment, Status
from queues.models import Board
from queues.services import DEFAULT_MINUTES_PER_PATIENT, board_rotate_token, queue_update
from tests.support import BOARD_QUEUE_KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(doctor, doctor2):
    board = Board.objects.create(name="Ground floor")
    board.doctors.add(doctor, doctor2)
    return board


@pytest.fixture
def five_today(book, patient, patient2, doctor, today):
    """Five of today's appointments with `doctor` (#1 to #5), alternating two patients."""
    return [
        book(patient=(patient, patient2)[i % 2], doctor=doctor, date=today, time=f"1{i}:00", actor=doctor)
        for i in range(5)
    ]


def test_the_board_api_shows_each_doctors_queue_with_the_next_three_and_no_login(
    board, five_today, doctor, doctor2, today
):
    queue_update(actor=doctor.user, doctor=doctor, current_queue=1)
    Appointment.objects.filter(pk=five_today[2].pk).update(status=Status.CANCELLED)  # #3 no longer waits

    response = APIClient().get(f"/api/boards/{board.token}/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Ground floor"
    by_doctor = {q["doctor_id"]: q for q in body["queues"]}
    assert set(by_doctor) == {doctor.pk, doctor2.pk}
    mine = by_doctor[doctor.pk]
    assert set(mine) == BOARD_QUEUE_KEYS
    assert mine["doctor_name"] == "Dr. Doc"
    assert mine["current_queue"] == 1
    assert mine["waiting_numbers"] == [2, 4, 5]
    assert mine["next"] == [2, 4, 5]
    assert mine["date"] == today.isoformat()
    idle = by_doctor[doctor2.pk]
    assert (idle["current_queue"], idle["next"], idle["estimated_wait"]) == (0, [], DEFAULT_MINUTES_PER_PATIENT)


def test_the_board_api_shows_at_most_three_next_numbers(board, book, doctor, today):
    from accounts.tests.factories import UserFactory

    for i in range(5):
        book(patient=UserFactory(), doctor=doctor, date=today, time=f"0{i + 1}:00")

    queue = next(
        q for q in APIClient().get(f"/api/boards/{board.token}/").json()["queues"] if q["doctor_id"] == doctor.pk
    )

    assert queue["next"] == [1, 2, 3]
    assert queue["waiting_numbers"] == [1, 2, 3, 4, 5]


def test_the_board_names_no_patient(board, five_today, doctor, patient, patient2, client, today):
    queue_update(actor=doctor.user, doctor=doctor, current_queue=2)
    body = APIClient().get(f"/api/boards/{board.token}/").json()
    page = client.get(f"/board/{board.token}/").content.decode()

    # The API's whole answer, key by key: the board's name, and per doctor numbers and the doctor's name.
    assert set(body) == {"name", "queues"}
    mine = next(q for q in body["queues"] if q["doctor_id"] == doctor.pk)
    assert mine == {
        "doctor_id": doctor.pk,
        "doctor_name": doctor.user.name,
        "date": today.isoformat(),
        "current_queue": 2,
        "estimated_wait": DEFAULT_MINUTES_PER_PATIENT,
        "waiting": 3,
        "waiting_numbers": [3, 4, 5],
        "next": [3, 4, 5],
    }
    assert all(set(q) == BOARD_QUEUE_KEYS for q in body["queues"])
    for person in (patient, patient2):
        assert person.name not in page and person.email not in page


@pytest.mark.parametrize("token", ["no-such-board", "x" * 65, "demo board"])
def test_an_unknown_board_is_404(board, client, token):
    assert APIClient().get(f"/api/boards/{token}/").status_code == 404
    assert client.get(f"/board/{token}/").status_code == 404


def test_the_board_page_shows_each_doctors_numbers_for_a_tv(board, five_today, doctor, doctor2, client):
    queue_update(actor=doctor.user, doctor=doctor, current_queue=2)

    response = client.get(f"/board/{board.token}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-testid="board-queue"') == 2
    assert f'data-doctor-id="{doctor.pk}"' in page and f'data-doctor-id="{doctor2.pk}"' in page
    assert 'data-testid="board-current">2<' in page
    assert "<li>3</li><li>4</li><li>5</li>" in page
    for hook in ("board-next", "connection-status", "board-clock", "board-wait"):
        assert f'data-testid="{hook}"' in page
    assert "Dr. Doc" in page and "Dr. Other" in page
    assert "js/board.js" in page and "css/board.css" in page


def test_the_board_page_in_bangla_writes_bangla_numerals(board, five_today, doctor, client):
    queue_update(actor=doctor.user, doctor=doctor, current_queue=2, estimated_wait=12)

    page = client.get(f"/board/{board.token}/?lang=bn").content.decode()

    assert '<html lang="bn">' in page
    assert 'data-testid="board-current">২<' in page
    assert "<li>৩</li><li>৪</li><li>৫</li>" in page
    assert "১২" in page
    assert "এখন" in page  # "Now serving" in Bangla
    assert "পরবর্তী" in page  # "Next"


def test_rotating_the_token_retires_the_old_url(board, client):
    old = board.token

    board_rotate_token(board=board)

    board.refresh_from_db()
    assert board.token != old and len(board.token) >= 32
    assert client.get(f"/board/{old}/").status_code == 404
    assert APIClient().get(f"/api/boards/{old}/").status_code == 404
    assert client.get(f"/board/{board.token}/").status_code == 200


def test_new_boards_get_distinct_secret_tokens(doctor):
    first, second = Board.objects.create(name="A"), Board.objects.create(name="B")
    assert first.token != second.token and len(first.token) >= 32


def test_staff_create_a_board_in_the_admin_see_its_url_and_rotate_it(client, admin_user, doctor, doctor2):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:queues_board_add"), {"name": "First floor", "doctors": [doctor.pk, doctor2.pk]}
    )
    assert response.status_code == 302
    board = Board.objects.get(name="First floor")
    assert set(board.doctors.all()) == {doctor, doctor2}

    change = client.get(reverse("admin:queues_board_change", args=[board.pk])).content.decode()
    assert f"/board/{board.token}/" in change
    assert 'data-testid="rotate-token"' in change
    listing = client.get(reverse("admin:queues_board_changelist")).content.decode()
    assert f"/board/{board.token}/" in listing

    old = board.token
    assert client.get(reverse("admin:queues_board_rotate", args=[board.pk])).status_code == 405
    response = client.post(reverse("admin:queues_board_rotate", args=[board.pk]))
    assert response.status_code == 302
    board.refresh_from_db()
    assert board.token != old

    response = client.post(
        reverse("admin:queues_board_changelist"), {"action": "rotate_tokens", "_selected_action": [board.pk]}
    )
    assert response.status_code == 302
    rotated = board.token
    board.refresh_from_db()
    assert board.token != rotated


def test_seed_demo_makes_the_demo_board_once():
    call_command("seed_demo", stdout=None)
    call_command("seed_demo", stdout=None)

    board = Board.objects.get(token="demo-board")
    assert Board.objects.count() == 1
    assert sorted(d.user.email for d in board.doctors.all()) == ["doctor2@test.com", "doctor@test.com"]
