"""The task worker, run by a test: every task whose time has come, then return."""

from unittest import mock

from django.core.management import call_command


def run_worker(*, starting: bool = False) -> None:
    """Run every task whose time has come, as a worker would, then return.

    `starting`: as our `run_worker` does when it starts (it queues the first reminder sweep and the
    other sweeps); else django-tasks-db's plain worker, so that only the runs the app queued itself
    take place. Inside the test's transaction: the worker's own connection housekeeping (which would
    close the test's connection) is left out.
    """
    with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        command = "run_worker" if starting else "db_worker"
        call_command(command, batch=True, startup_delay=False, reload=False, verbosity=0)
