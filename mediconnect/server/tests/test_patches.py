"""The registry of private internals: every listed target is where, and as, it was checked; one that
moved stops the server at its start."""

import inspect
import sys

import pytest

from mediconnect.server import patches


def test_every_listed_target_is_as_it_was_checked_against_the_pinned_versions():
    assert patches.problems() == []


def test_the_pins_are_the_versions_the_targets_were_checked_against():
    from django.conf import settings

    pins = {}
    for line in (settings.BASE_DIR / "requirements.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.split("[")[0].lower()] = version.strip()
    assert {name.lower(): version for name, version in patches.VERSIONS_CHECKED.items()} == {
        name.lower(): pins[name.lower()] for name in patches.VERSIONS_CHECKED
    }


@pytest.mark.parametrize("target", patches.TARGETS, ids=lambda target: target.path)
def test_a_target_that_is_gone_is_named_and_stops_the_start(target, monkeypatch):
    owner_path, _, name = target.path.rpartition(".")
    owner = patches._resolve(owner_path)
    if inspect.ismodule(patches._resolve(target.path)):
        monkeypatch.setitem(sys.modules, target.path, None)
    # From every class that defines it (a method may be inherited, and replaced by ours on a subclass).
    for definer in [k for k in getattr(owner, "__mro__", ()) if name in vars(k)] or [owner]:
        monkeypatch.delattr(definer, name)
    assert any(target.path in problem for problem in patches.problems())
    with pytest.raises(patches.PatchError, match=target.path.replace(".", r"\.")):
        patches.check()


def test_code_that_changed_is_named_with_the_target_it_serves(monkeypatch):
    from django.core.handlers.asgi import ASGIHandler

    async def handle(self, scope, receive, send):  # what a Django release might have made of it
        return None

    monkeypatch.setattr(ASGIHandler, "handle", handle)
    assert patches.problems() == [
        "django.core.handlers.asgi.ASGIHandler.handle changed shape "
        f"(fingerprint {patches.fingerprint(handle)}, checked ab2236e287c805bf) "
        "for django.core.handlers.asgi.ASGIHandler.handle"
    ]


def test_an_attribute_that_is_gone_is_named(monkeypatch):
    from twisted.internet import abstract

    fields = dict(abstract.FileDescriptor.__dict__)
    monkeypatch.delattr(abstract.FileDescriptor, "offset")
    assert "offset" not in dir(abstract.FileDescriptor) and "offset" in fields
    assert any("offset gone from FileDescriptor" in problem for problem in patches.problems())
