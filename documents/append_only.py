"""The access log's append-only rule, on SQLite: what its DELETE trigger asks before refusing.

On PostgreSQL the trigger refuses every UPDATE and DELETE of a row; a test database is emptied with
TRUNCATE there, which row triggers do not see. SQLite has no TRUNCATE: Django empties a test
database between transactional tests with DELETE, which the trigger would refuse. So SQLite's DELETE
trigger asks `documents_accesslog_flushing()`, a function each of Django's SQLite connections gets
here, false unless a test run is emptying its database (`flushing(True)`, from the root conftest);
a connection without the function (the sqlite3 shell) gets an error, so the DELETE still fails.
"""

_flushing = False


def flushing(on: bool) -> None:
    """Let (or stop letting) DELETE empty the access log: for the test run's flush between tests only."""
    global _flushing
    _flushing = on


def register_sqlite_function(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("documents_accesslog_flushing", 0, lambda: int(_flushing))
