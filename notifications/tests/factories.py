"""factory-boy factories for the notifications app's models: each model's test defaults written once.

Rows are saved as they are: no service runs, so no notification, event or reminder comes with them."""

import factory
from factory.django import DjangoModelFactory

from accounts.tests.factories import UserFactory
from notifications.models import Notification, NotificationType


class NotificationFactory(DjangoModelFactory):
    """An unread APPOINTMENT_BOOKED notification about an appointment."""

    class Meta:
        model = Notification

    user = factory.SubFactory(UserFactory)
    type = NotificationType.APPOINTMENT_BOOKED
    title = "t"
    message = "m"
    related_id = 1
    related_type = "Appointment"
