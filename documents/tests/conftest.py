import pytest

from tests.support.clamd import clamd  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def _documents_storage(settings, tmp_path):
    """Each test stores its files in a directory of its own, with no virus scanner unless it asks."""
    storages = {**settings.STORAGES}
    storages["documents"] = {
        **storages["documents"],
        "OPTIONS": {**storages["documents"]["OPTIONS"], "location": str(tmp_path / "files")},
    }
    settings.STORAGES = storages
    settings.CLAMD_URL = ""
    return tmp_path / "files"


@pytest.fixture
def stored(_documents_storage):
    """The names of the files in storage now."""

    def names():
        root = _documents_storage
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []

    return names
