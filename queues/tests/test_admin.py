"""Staff set a doctor's queue in the Django admin: through queue_update only, refused values shown on the form."""

from unittest import mock

import pytest

from core import outbox
from queues.models import QueueDay
from queues.services import MAX_ESTIMATED_WAIT

pytestmark = pytest.mark.django_db

ADD = "/admin/queues/queueday/add/"


def add(staff, doctor, date, **values):
    body = {"doctor": doctor.pk, "date": date.isoformat(), "current_queue": 0, "estimated_wait": "", **values}
    return staff.post(ADD, body)


def test_adding_a_day_sets_it_through_the_service_and_pushes_the_queue_once(staff, doctor, today):
    with mock.patch.object(outbox, "queue_changed", wraps=outbox.queue_changed) as pushed:
        response = add(staff, doctor, today, current_queue=4, estimated_wait=12)

    assert response.status_code == 302
    row = QueueDay.objects.get(doctor=doctor, date=today)
    assert (row.current_queue, row.estimated_wait) == (4, 12)
    assert pushed.call_args_list == [mock.call(doctor.pk, today, read=mock.ANY)]


def test_a_refused_estimate_is_shown_on_the_form_and_nothing_is_saved(staff, doctor, today):
    with mock.patch.object(outbox, "queue_changed") as pushed:
        response = add(staff, doctor, today, estimated_wait=MAX_ESTIMATED_WAIT + 1)

    assert response.status_code == 200  # the form again, with the error
    assert f"less than or equal to {MAX_ESTIMATED_WAIT}" in response.content.decode()
    assert not QueueDay.objects.exists()
    pushed.assert_not_called()


def test_a_refused_change_keeps_the_row_as_it_was(staff, doctor, today):
    add(staff, doctor, today, current_queue=2, estimated_wait=10)
    row = QueueDay.objects.get()

    response = staff.post(
        f"/admin/queues/queueday/{row.pk}/change/", {"current_queue": 3, "estimated_wait": MAX_ESTIMATED_WAIT + 1}
    )

    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.current_queue, row.estimated_wait) == (2, 10)


def test_changing_the_number_keeps_the_doctors_estimate(staff, doctor, today):
    add(staff, doctor, today, current_queue=2, estimated_wait=10)
    row = QueueDay.objects.get()

    response = staff.post(f"/admin/queues/queueday/{row.pk}/change/", {"current_queue": 3, "estimated_wait": 10})

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.current_queue, row.estimated_wait) == (3, 10)


def test_the_admin_the_api_and_the_service_share_the_wires_bound_on_queue_numbers(staff, doctor, today):
    from core import wirejson
    from queues.serializers import QueueUpdateSerializer
    from queues.services import MAX_QUEUE_NUMBER

    assert MAX_QUEUE_NUMBER == wirejson.MAX_INT
    assert QueueUpdateSerializer().fields["current_queue"].max_value == wirejson.MAX_INT

    too_big = add(staff, doctor, today, current_queue=wirejson.MAX_INT + 1)
    assert too_big.status_code == 200 and not QueueDay.objects.exists()
    assert add(staff, doctor, today, current_queue=wirejson.MAX_INT).status_code == 302
    assert QueueDay.objects.get().current_queue == wirejson.MAX_INT
