"""How long a video visit takes to connect: from the doctor's "Start video visit" to `connected` on
both sides (run by hand; docs/bench/video/README.md).

    .venv/bin/python bench/video_calls.py [--calls 20] [--direct]

Builds a scratch SQLite database with one doctor, one patient and `--calls` VIDEO appointments open
now, starts a coturn of its own on the loopback (tests/support/coturn.py) and one daphne process
that hands it out as the TURN server, relay-only (VIDEO_FORCE_RELAY; `--direct` lets ICE choose,
which on one machine means host candidates). Chromium (Debian's, fake camera and microphone) runs
the doctor and the patient in two browser contexts. For each call the patient's visit page is open
and waiting (the patient joined first, as the ring asks them to); the doctor's console is open;
the clock starts as the doctor's click on `start-visit` is sent and stops when the later of the two
pages shows `connected`. Then the doctor hangs up and both show `ended`. What is timed is the whole
path a doctor waits through: the ring's POST, loading the visit page, the camera, the socket, the
call API, the offer/answer over the socket, TURN allocations and ICE checks through the relay.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-Passw0rd!"

# Each page notes when its call state first turns `connected` (Date.now(), the machine's clock).
NOTE_CONNECTED = """
(() => {
  new MutationObserver(() => {
    const node = document.querySelector('[data-testid="call-state"]');
    if (node && node.dataset.state === "connected" && !window.__connectedAt) window.__connectedAt = Date.now();
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
})();
"""


def prepare(calls: int):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='mediconnect-video-')}/video.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop in this thread; plain ORM calls
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.tests.factories import DoctorFactory, UserFactory
    from appointments.models import Mode
    from appointments.tests.factories import AppointmentFactory

    call_command("migrate", verbosity=0)
    doctor = DoctorFactory(user__email="bench.doctor@example.com", user__name="Dr. Bench")
    patient = UserFactory(email="bench.patient@example.com", name="Bench Patient")
    for user in (doctor.user, patient):
        user.set_password(PASSWORD)
        user.save()
    now = timezone.localtime()
    # One appointment per call (a ring within 30 s of the last is refused), minutes apart, all open now.
    appointments = [
        AppointmentFactory(
            doctor=doctor,
            patient=patient,
            date=now.date(),
            time=(now - datetime.timedelta(minutes=n + 1)).time().replace(second=0, microsecond=0),
            mode=Mode.VIDEO,
        )
        for n in range(calls)
    ]
    return doctor, patient, appointments


def sign_in(context, base: str, email: str, then: str):
    page = context.new_page()
    page.goto(f"{base}/login/?next={then}")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}{then}")
    return page


def one_call(doctor_page, patient_page, base: str, appointment_id: int) -> dict:
    from playwright.sync_api import expect

    state = '[data-testid="call-state"]'
    patient_page.goto(f"{base}/visit/{appointment_id}/")
    expect(patient_page.locator(state)).to_have_attribute("data-state", "waiting")
    doctor_page.goto(f"{base}/doctor/")
    expect(doctor_page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    button = doctor_page.locator(f'[data-testid="appointment-row"][data-id="{appointment_id}"]').get_by_test_id(
        "start-visit"
    )
    expect(button).to_be_visible()
    started = time.time() * 1000
    button.click()
    for page in (doctor_page, patient_page):
        expect(page.locator(state)).to_have_attribute("data-state", "connected", timeout=60_000)
    doctor_at, patient_at = (page.evaluate("window.__connectedAt") for page in (doctor_page, patient_page))
    route = doctor_page.locator(state).get_attribute("data-route")
    doctor_page.get_by_test_id("hang-up").click()
    for page in (doctor_page, patient_page):
        expect(page.locator(state)).to_have_attribute("data-state", "ended")
    return {"both": max(doctor_at, patient_at) - started, "doctor": doctor_at - started, "route": route}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--direct", action="store_true", help="let ICE choose (default: relay only)")
    args = parser.parse_args()
    doctor, patient, appointments = prepare(args.calls)
    from playwright.sync_api import expect, sync_playwright

    from tests.live import CHROMIUM, CHROMIUM_ARGS, Daphne
    from tests.support.coturn import start_coturn

    expect.set_options(timeout=30_000)
    turn = start_coturn(Path(tempfile.mkdtemp(prefix="mediconnect-coturn-")))
    server = Daphne(**turn.env(), VIDEO_FORCE_RELAY="false" if args.direct else "true")
    results = []
    try:
        with sync_playwright() as playwright:
            fake = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *fake])
            pages = []
            for user, home in ((doctor.user, "/doctor/"), (patient, "/patient/")):
                context = browser.new_context(permissions=["camera", "microphone"])
                context.add_init_script(NOTE_CONNECTED)
                pages.append(sign_in(context, server.url, user.email, home))
            doctor_page, patient_page = pages
            for appointment in appointments:
                results.append(one_call(doctor_page, patient_page, server.url, appointment.pk))
            browser.close()
    finally:
        server.stop()
        turn.stop()
    both = [r["both"] for r in results]
    routes = sorted({r["route"] for r in results})
    print(
        f"{len(both)} calls ({'direct allowed' if args.direct else 'relay only'}; route {', '.join(routes)}): "
        f"start-visit → connected on both sides: p50 {statistics.median(both):.0f} ms, "
        f"p99 {percentile(both, 0.99):.0f} ms, min {min(both):.0f} ms; the doctor's side alone "
        f"p50 {statistics.median(r['doctor'] for r in results):.0f} ms"
    )


if __name__ == "__main__":
    main()
