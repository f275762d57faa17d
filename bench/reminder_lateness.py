"""How late reminders are: a real task worker against reminders due over a short window (run by hand).

    .venv/bin/python bench/reminder_lateness.py [--reminders 60] [--window 60] [--workers 1] [--kill-after S]

Builds a scratch database (PostgreSQL when BENCH_DATABASE_URL is set, else a temporary SQLite
file), books appointments whose reminders fall due one after another over `--window` seconds,
starting a little after the worker starts, then runs `manage.py run_worker` (`--workers` of them)
until every reminder is sent (`--kill-after S`: the first worker is SIGKILLed S seconds in, and
what it had claimed waits for its lease, TASK_LEASE_SECONDS). Lateness is each reminder's
notification `created_at` (stored, and pushed right after its commit) minus its due time.
Writes the figures as JSON under docs/bench/reminders/ and prints them.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "reminders"
LEAD_SECONDS = 15  # the first reminder falls due this long after booking: the workers are up by then


def prepare() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or (
        f"sqlite:///{tempfile.mkdtemp(prefix='mediconnect-remind-')}/remind.sqlite3"
    )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    os.environ.pop("REDIS_URL", None)  # the figures are the worker's; pushes need no Redis here
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def plan(reminders: int, window: float) -> tuple[list[int], datetime.datetime, int]:
    """Book appointments whose reminders fall due evenly over `window` seconds from LEAD_SECONDS on."""
    from django.test import override_settings
    from django.utils import timezone

    from accounts.models import Doctor, Role, User
    from appointments.models import Reminder
    from appointments.services import appointment_book

    tag = uuid.uuid4().hex[:8]
    doctor_user = User.objects.create_user(f"bench-doc-{tag}@example.com", "x", name="Dr. Bench", role=Role.DOCTOR)
    doctor = Doctor.objects.create(user=doctor_user)
    patient = User.objects.create_user(f"bench-pat-{tag}@example.com", "x", name="Bench Patient")
    first_due = timezone.now() + datetime.timedelta(seconds=LEAD_SECONDS)
    # Appointments start at whole minutes, well after the window; each gets several offsets.
    local = timezone.localtime(first_due + datetime.timedelta(seconds=window + 180))
    start_minute = local.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    per_appointment = 6
    ids = []
    for a in range((reminders + per_appointment - 1) // per_appointment):
        start = start_minute + datetime.timedelta(minutes=a)
        dues = [
            first_due + datetime.timedelta(seconds=window * k / max(1, reminders - 1))
            for k in range(a * per_appointment, min(reminders, (a + 1) * per_appointment))
        ]
        offsets = sorted({int((start - due).total_seconds()) for due in dues}, reverse=True)
        with override_settings(REMINDER_OFFSETS=offsets):
            appointment = appointment_book(
                actor=patient, doctor=doctor, date=start.date(), time=start.time(), patient=patient
            )
        ids += list(Reminder.objects.filter(appointment=appointment).values_list("pk", flat=True))
    return ids, first_due, patient.pk


def run(reminders: int, window: float, workers: int, kill_after: float | None) -> dict:
    url = prepare()
    from appointments.models import Reminder
    from notifications.models import Notification

    ids, first_due, patient_id = plan(reminders, window)
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--no-startup-delay", "-v", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    started = time.monotonic()
    killed = None
    try:
        deadline = started + LEAD_SECONDS + window + 120
        while time.monotonic() < deadline:
            if kill_after is not None and killed is None and time.monotonic() - started >= kill_after:
                procs[0].kill()  # SIGKILL: whatever it had claimed waits for its lease to end
                killed = round(time.monotonic() - started, 1)
            if not Reminder.objects.filter(pk__in=ids, state="PLANNED").exists():
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    rows = list(Reminder.objects.filter(pk__in=ids).select_related("notification"))
    late = sorted((r.notification.created_at - r.due_at).total_seconds() for r in rows if r.notification is not None)
    early = [x for x in late if x < 0]
    return {
        "what": "reminder lateness: notification stored (and pushed after its commit) minus due time, seconds",
        "command": f"bench/reminder_lateness.py --reminders {reminders} --window {window:g} --workers {workers}"
        + (f" --kill-after {kill_after:g}" if kill_after is not None else ""),
        "database": url.split(":", 1)[0],
        "workers": workers,
        "worker_poll_interval_s": 1,
        "reminders": len(rows),
        "sent": len(late),
        "notifications_stored": Notification.objects.filter(user_id=patient_id, type="APPOINTMENT_REMINDER").count(),
        "worker_killed_at_s": killed,
        "not_sent": sum(r.state != "SENT" for r in rows),
        "sent_before_due": len(early),
        "median_s": round(statistics.median(late), 3) if late else None,
        "p99_s": round(late[min(len(late) - 1, int(0.99 * len(late)))], 3) if late else None,
        "max_s": round(late[-1], 3) if late else None,
        "first_due": first_due.isoformat(),
        "window_s": window,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=60)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kill-after", type=float, help="SIGKILL the first worker this many seconds after start")
    args = parser.parse_args()
    result = run(args.reminders, args.window, args.workers, args.kill_after)
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"lateness-{result['database']}-{args.workers}w{'-killed' if args.kill_after else ''}.json"
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
