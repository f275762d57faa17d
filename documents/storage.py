"""Where the documents' bytes live: the `documents` storage of STORAGES, through Django's storage API."""

import uuid

from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty


class _DocumentsStorage(LazyObject):
    # Looked up when first used, not when the model is imported, so a test (or a deployment's
    # settings module) that changes STORAGES is heard.
    def _setup(self):
        self._wrapped = storages["documents"]


documents_storage = _DocumentsStorage()


@receiver(setting_changed)
def _storages_changed(*, setting, **kwargs):
    if setting == "STORAGES":
        documents_storage._wrapped = empty


def select_storage():
    """The model field's storage (a callable, so migrations name it instead of a path)."""
    return documents_storage


def random_name(instance, filename: str) -> str:
    """A stored name says nothing of the file: no patient, no title, no uploaded name."""
    return f"files/{uuid.uuid4().hex}"
