"""Every model the staff work with opens in the admin: list (with its filters and search) and forms."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

MODELS = [
    ("accounts", "user"),
    ("accounts", "doctor"),
    ("appointments", "appointment"),
    ("notifications", "notification"),
    ("queues", "queueday"),
    ("queues", "board"),
]


@pytest.fixture
def staff_client(client, admin_user, book, patient, doctor):
    book(patient=patient, doctor=doctor)  # something in every list
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_the_admin_lists_and_searches_each_model(staff_client, app, model, patient):
    changelist = reverse(f"admin:{app}_{model}_changelist")
    assert staff_client.get(changelist).status_code == 200
    assert staff_client.get(changelist, {"q": patient.email}).status_code == 200


def test_appointment_list_filters_and_date_hierarchy(staff_client, tomorrow):
    changelist = reverse("admin:appointments_appointment_changelist")
    response = staff_client.get(changelist, {"status__exact": "CONFIRMED", "date__year": tomorrow.year})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize(("app", "model"), [m for m in MODELS if m[0] != "notifications"])
def test_each_add_form_opens(staff_client, app, model):
    assert staff_client.get(reverse(f"admin:{app}_{model}_add")).status_code == 200


def test_the_appointment_change_form_opens_with_the_queue_number_read_only(staff_client):
    from appointments.models import Appointment

    appointment = Appointment.objects.get()
    response = staff_client.get(reverse("admin:appointments_appointment_change", args=[appointment.pk]))
    assert response.status_code == 200
    assert 'name="queue_number"' not in response.content.decode()
