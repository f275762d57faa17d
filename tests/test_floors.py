"""Imports point down: mediconnect → visits → documents → queues → appointments → notifications → accounts →
core. No module of a floor imports one above it (at its top or inside a function), and none below mediconnect/ reads
Django's private transaction state (the push after commit uses `transaction.on_commit` only)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ["core", "accounts", "notifications", "appointments", "queues", "documents", "visits", "mediconnect"]
PRIVATE = ("run_on_commit", "savepoint_ids", "atomic_blocks")


def sources(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "tests" not in path.relative_to(ROOT).parts:
            yield path


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("floor", FLOORS[:-1])
def test_no_module_imports_a_floor_above_its_own(floor):
    above = set(FLOORS[FLOORS.index(floor) + 1 :])
    upward = {str(path.relative_to(ROOT)): sorted(imported(path) & above) for path in sources(floor)}
    assert {path: names for path, names in upward.items() if names} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from queues import services\n")
    assert imported(module) == {"queues"}


@pytest.mark.parametrize("floor", FLOORS[:-1])
def test_no_floor_reads_djangos_private_transaction_state(floor):
    found = [
        f"{path.relative_to(ROOT)}: {name}" for path in sources(floor) for name in PRIVATE if name in path.read_text()
    ]
    assert found == []


# Documented by their libraries, though spelled with an underscore: Django's model options, the two
# methods a custom storage implements ("Writing a custom storage system"), and django-simple-history's
# way of naming who made a change.
DOCUMENTED_PRIVATE = {"_meta", "_open", "_save", "_history_user"}
# The one package that may reach into a library's internals, each use listed in its registry
# (mediconnect/server/patches.py, checked by mediconnect/server/tests/test_patches.py).
SERVER = ("mediconnect", "server")


def private_reads(path: Path) -> list[str]:
    """Each `x._name` where x is not the class's own `self`/`cls`: another object's private attribute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        if node.attr in DOCUMENTED_PRIVATE or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            continue
        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_outside_the_server_package_reads_a_private_attribute():
    found = [
        f"{path.parent.relative_to(ROOT)}/{line}"
        for package in [*FLOORS, "deploy"]
        for path in sorted((ROOT / package).rglob("*.py"))
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
        and path.relative_to(ROOT).parts[:2] != SERVER
        for line in private_reads(path)
    ]
    assert found == []


def test_the_private_scan_sees_a_library_internal_and_passes_over_the_documented_ones(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("connection.savepoint_ids\nserver._ports = []\nmodel._meta\nself._own\n")
    assert private_reads(module) == ["m.py:2: server._ports"]
