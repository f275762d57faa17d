"""factory-boy factories for the documents app: rows saved as they are (no service, no event, no log)."""

import factory
from django.core.files.base import ContentFile
from factory.django import DjangoModelFactory

from accounts.tests.factories import UserFactory
from documents.models import File

from .samples import pdf


class FileFactory(DjangoModelFactory):
    """An AVAILABLE PDF of its own patient, uploaded by that patient."""

    class Meta:
        model = File

    patient = factory.SubFactory(UserFactory)
    uploaded_by = factory.SelfAttribute("patient")
    kind = File.Kind.LAB_REPORT
    title = factory.Sequence(lambda n: f"Report {n}")
    original_name = "report.pdf"
    content_type = "application/pdf"
    content = factory.LazyFunction(lambda: ContentFile(pdf(), name="upload"))
    size = factory.LazyAttribute(lambda row: row.content.size)
    status = File.Status.AVAILABLE
