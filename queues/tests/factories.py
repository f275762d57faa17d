"""factory-boy factories for the queues app's models: each model's test defaults written once.

Rows are saved as they are: no service runs, so no notification, event or reminder comes with them."""

import factory
from factory.django import DjangoModelFactory

from queues.models import Board


class BoardFactory(DjangoModelFactory):
    """A waiting-room board; `BoardFactory(doctors=[...])` shows those doctors' queues."""

    class Meta:
        model = Board
        skip_postgeneration_save = True

    name = "Waiting room"

    @factory.post_generation
    def doctors(self, create, extracted, **kwargs):
        if create and extracted:
            self.doctors.add(*extracted)
