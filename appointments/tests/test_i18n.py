"""Notifications are stored in the recipient's language; API errors speak the caller's."""

import datetime

import pytest

from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_each_recipient_gets_the_booking_notification_in_their_own_language(book, patient, doctor, tomorrow):
    patient.language = "bn"
    patient.save(update_fields=["language"])

    book(patient=patient, doctor=doctor, time="09:30", reason="chest pain since Tuesday")

    to_patient = Notification.objects.get(user=patient)
    to_doctor = Notification.objects.get(user=doctor.user)
    assert to_patient.title == "অ্যাপয়েন্টমেন্ট নিশ্চিত হয়েছে"
    assert doctor.user.name in to_patient.message and "09:30" in to_patient.message
    assert to_doctor.title == "New Appointment"
    for stored in (to_patient, to_doctor):  # the reason is health detail: never in a notification
        assert "chest pain" not in stored.title + stored.message


def test_api_errors_follow_the_users_language(api, patient, doctor):
    patient.language = "bn"
    patient.save(update_fields=["language"])
    yesterday = datetime.date.today() - datetime.timedelta(days=2)

    response = api(patient).post(
        "/api/appointments/", {"doctor": doctor.pk, "date": yesterday.isoformat(), "time": "09:00"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["date"] == ["এই তারিখটি পেরিয়ে গেছে।"]
