"""Where the documents' bytes live: the `documents` storage of STORAGES, through Django's storage API."""

import uuid

from django.core.files.storage import Storage, storages


class _DocumentsStorage(Storage):
    """STORAGES["documents"] as configured at the moment of each call, not when the model was imported:
    Django's `storages` handler forgets its backends when STORAGES changes (a test, a settings module),
    and this asks it every time."""

    def __getattribute__(self, name):
        if name.startswith("__"):
            return object.__getattribute__(self, name)
        return getattr(storages["documents"], name)


documents_storage = _DocumentsStorage()


def select_storage():
    """The model field's storage (a callable, so migrations name it instead of a path)."""
    return documents_storage


def random_name(instance, filename: str) -> str:
    """A stored name says nothing of the file: no patient, no title, no uploaded name."""
    return f"files/{uuid.uuid4().hex}"
