"""Server-rendered portals: the page shell; the data comes from the API and the socket."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.forms import ProfileForm
from accounts.models import Role
from accounts.services import user_update_profile
from accounts.views import home_for
from appointments.models import ACTIVE_STATUSES, Status
from appointments.services import ADMIN, DOCTOR, PATIENT, TRANSITIONS
from core import wire
from documents.models import File
from notifications import replay
from notifications.selectors import unread_count


def home(request):
    if request.user.is_authenticated:
        return redirect(home_for(request.user))
    return redirect("/login/")


def connection_strings() -> dict:
    """The words of the connection indicator's states, on the portals and the board alike."""
    return {
        "conn.connecting": _("Connecting…"),
        "conn.connected": _("Live"),
        "conn.reconnecting": _("Reconnecting…"),
        "conn.offline": _("Offline"),
    }


def socket_page_strings() -> dict:
    """What base.js and socket.js may show on any signed-in page with the socket (portals, the visit):
    the connection's states, an appointment's status, a request that failed."""
    return {
        **connection_strings(),
        "conn.disconnected": _("Open in another window — tap to reconnect"),
        "status.PENDING": _("Pending"),
        "status.CONFIRMED": _("Confirmed"),
        "status.COMPLETED": _("Completed"),
        "status.CANCELLED": _("Cancelled"),
        "status.NO_SHOW": _("No-show"),
        "error.network": _("Could not reach the server. Check your connection and try again."),
        "error.generic": _("Something went wrong. Please try again."),
        "loading": _("Loading…"),
    }


def _shared_strings() -> dict:
    """Text the portals' scripts show, in the page's language (`{name}` marks a value filled in by the script)."""
    return {
        **socket_page_strings(),
        "notifications.empty": _("No notifications yet."),
        "notifications.unread": _("Unread"),
        "notifications.new": _("New notification: {title}. {message}"),
        "queue.number": _("Queue #{number}"),
        # The buttons of status moves (rows.js); which of them a page shows is the server's `moves`.
        "action.confirm": _("Confirm"),
        "action.complete": _("Complete"),
        "action.no_show": _("No-show"),
        "action.cancel": _("Cancel"),
    }


def _document_strings() -> dict:
    """The documents' and prescriptions' text, on both portals (static/js/documents.js)."""
    return {
        "docs.empty": _("No documents yet."),
        "docs.download": _("Download"),
        "docs.remove": _("Remove"),
        "docs.confirm_remove": _("Remove the document “{title}”? It will no longer be shown."),
        "docs.uploading": _("Uploading…"),
        "docs.uploaded": _("Uploaded “{title}”."),
        "docs.need_file": _("Please choose a file."),
        "docs.hint": _("PDF, JPEG, PNG or WEBP, up to {size}."),
        "docs.too_large": _("The file is too large."),
        "docs.unsupported": _("This kind of file is not accepted. Send a PDF, JPEG, PNG or WEBP."),
        "docs.fix_errors": _("Please correct the highlighted fields."),
        "docs.added": _("New document: {title}."),
        "docs.now_available": _("“{title}” is ready."),
        "docs.now_rejected": _("“{title}” was rejected by the virus scanner."),
        "docs.by": _("Uploaded by {name}"),
        "docs.count": _("Documents ({count})"),
        "docs.log_show": _("Who opened it"),
        "docs.log_hide": _("Hide the log"),
        "docs.log_empty": _("Nobody yet."),
        "docs.someone": _("(the system)"),
        "size.bytes": _("{n} B"),
        "size.kb": _("{n} KB"),
        "size.mb": _("{n} MB"),
        "rx.version": _("v{version}"),
        "rx.latest": _("Prescription v{version} (PDF)"),
        "rx.earlier": _("Earlier versions"),
        "rx.issued": _("Prescription v{version} issued."),
    }


def _patient_strings() -> dict:
    return {
        "appointments.empty": _("You have no appointments yet."),
        "appointments.none_upcoming": _("No upcoming appointments."),
        "appointments.past": _("Past and cancelled ({count})"),
        "action.track": _("Track queue"),
        "confirm.cancel": _("Cancel your appointment with {doctor} on {date} at {time}?"),
        "book.choose_first": _("Choose a doctor and a date first"),
        "book.choose_time": _("Choose a time"),
        "book.need_doctor": _("Please choose a doctor."),
        "book.need_date": _("Please choose a date."),
        "book.need_time": _("Please choose a time."),
        "book.no_times": _("No free times on this day"),
        "book.success": _("Booked with {doctor} on {date} at {time}. Your queue number is {number}."),
        "book.conflict": _("Sorry, that time was just taken. Please choose another time."),
        "book.fix_errors": _("Please correct the highlighted fields."),
        "queue.title": _("Queue for {doctor}"),
        "queue.your_turn": _("It is your turn now. Please go in."),
        "queue.called": _("Your number has been called."),
        "queue.waiting": _("Please wait to be called."),
        "queue.per_patient": _("{minutes} min per patient"),
        "queue.minutes": _("about {minutes} min"),
        "queue.forbidden": _("You can follow this queue only while your appointment is active."),
        "queue.now_serving": _("Now serving number {number}."),
        "announce.booked": _("New appointment with {doctor} on {date} at {time}, queue number {number}."),
        "announce.cancelled": _("Your appointment with {doctor} on {date} at {time} was cancelled."),
        "announce.status": _("Your appointment with {doctor} on {date} at {time} is now: {status}."),
        "visit.join": _("Join video visit"),
        "visit.video": _("By video"),
    }


def _doctor_strings() -> dict:
    return {
        "appointments.empty_today": _("No appointments today."),
        "confirm.cancel_doctor": _("Cancel the appointment of {patient} at {time}?"),
        "queue.saved": _("Queue updated."),
        "queue.called_next": _("Now serving #{number}."),
        "announce.booked": _("New appointment: {patient} at {time}, queue number {number}."),
        "announce.cancelled": _("Cancelled: {patient} at {time}."),
        "rx.write": _("Write prescription"),
        "rx.write_for": _("Prescription for {patient}"),
        "rx.medicine_n": _("Medicine {n}"),
        "rx.need_item": _("Add at least one medicine."),
        "rx.need_fields": _("Each medicine needs its name."),
        "rx.follow_up": _("Follow-up: {date}"),
        "rx.diagnosis": _("Diagnosis"),
        "rx.advice": _("Advice"),
        "rx.none": _("None"),
        "rx.conflict": _("A prescription can be written only for a confirmed or completed appointment."),
        "visit.start": _("Start video visit"),
        "visit.video": _("By video"),
    }


def _file_kinds() -> list[tuple[str, str]]:
    words = {
        File.Kind.PRESCRIPTION: _("Prescription"),
        File.Kind.LAB_REPORT: _("Lab report"),
        File.Kind.IMAGING: _("Imaging"),
        File.Kind.OTHER: _("Other"),
    }
    return [(kind, words.get(kind, label)) for kind, label in File.Kind.choices]


def _moves_for(user) -> dict[str, list[str]]:
    """The status moves `user`'s role may make, by status, from the one table (the portals' buttons)."""
    role = ADMIN if user.is_admin else {Role.PATIENT: PATIENT, Role.DOCTOR: DOCTOR}.get(user.role)
    moves: dict[str, list[str]] = {}
    for (old, new), roles in TRANSITIONS.items():
        if role in roles:
            moves.setdefault(str(old), []).append(str(new))
    return moves


def socket_config() -> dict:
    """The socket's codes for the page's scripts (static/js/socket.js), from the one declaration in core.wire."""
    return {"close_codes": wire.CLOSE_CODES, "error_codes": list(wire.ERROR_CODES)}


def _portal(request, template: str, strings: dict, page: dict | None = None, **extra):
    user = request.user
    config = {
        "user_id": user.pk,
        "role": user.role,
        "language": get_language(),
        "csrf_token": get_token(request),
        # The stream position when the page was made: the socket resumes from here, so
        # nothing that happens while the page loads its lists is missed.
        "last_event_id": replay.last_seq(user.pk) or 0,
        **socket_config(),
        "today": timezone.localdate().isoformat(),
        # The server's clock (ms since the epoch): the page turns the day at the clinic's midnight by it.
        "now": int(timezone.now().timestamp() * 1000),
        "time_zone": settings.TIME_ZONE,
        "moves": _moves_for(user),
        "active_statuses": [str(status) for status in ACTIVE_STATUSES],
        # The documents' choices with their words in the page's language (static/js/documents.js).
        "file_kinds": {str(value): label for value, label in _file_kinds()},
        "file_statuses": {
            "SCANNING": _("Checking for viruses…"),
            "AVAILABLE": _("Available"),
            "REJECTED": _("Rejected"),
        },
        "file_actions": {
            "UPLOAD": _("uploaded it"),
            "LINK": _("took a download link"),
            "DOWNLOAD": _("downloaded it"),
            "DELETE": _("removed it"),
        },
        "file_max_bytes": settings.FILE_MAX_BYTES,
        # The statuses of an appointment that a prescription may be written for (contract v1.2).
        "prescription_statuses": [str(Status.CONFIRMED), str(Status.COMPLETED)],
        **extra,
    }
    context = {
        "config": config,
        "strings": {**_shared_strings(), **_push_strings(), **strings},
        "unread_count": unread_count(user),
        "file_kinds": _file_kinds(),
        **extra,
        **(page or {}),
    }
    return render(request, template, context)


@login_required
def patient_portal(request):
    if request.user.role != Role.PATIENT:
        raise PermissionDenied
    return _portal(request, "portals/patient.html", {**_document_strings(), **_patient_strings()})


@login_required
def doctor_portal(request):
    doctor = getattr(request.user, "doctor_profile", None) if request.user.role == Role.DOCTOR else None
    if doctor is None:
        raise PermissionDenied
    strings = {**_document_strings(), **_doctor_strings()}
    return _portal(request, "portals/doctor.html", strings, doctor_id=doctor.pk)


def _push_strings() -> dict:
    """Alerts on this device, from the bell's panel and the settings page (static/js/alerts.js)."""
    return {
        "push.unsupported": _(
            "This browser cannot show alerts. On an iPhone, add MediConnect to the Home Screen first."
        ),
        "push.denied": _(
            "Alerts are blocked for this site. Allow notifications in the browser's site settings, then try again."
        ),
        "push.unreachable": _("Could not reach the browser's push service. Check your connection and try again."),
        "push.failed": _("Could not turn on alerts. Please try again."),
        "push.asking": _("Waiting for your answer…"),
        "push.done": _("Alerts are on for this device."),
        "push.devices_empty": _("No device gets alerts yet."),
        "push.this_device": _("This device"),
        "push.since": _("since {date}"),
        "push.remove": _("Remove"),
        "push.removed": _("Removed {device}."),
    }


@login_required
def settings_page(request):
    """Name, phone, language and the offline email/SMS choices (the rules and service of `PATCH
    /api/me/`), alerts on this device (Web Push) and the install hint; for patients and doctors."""
    user = request.user
    if user.role not in (Role.PATIENT, Role.DOCTOR):
        raise PermissionDenied
    form = ProfileForm.for_user(user, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        user_update_profile(user=user, **form.cleaned_data)
        response = redirect(reverse("portal-settings") + "?saved=1")
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
        return response
    page = {"form": form, "saved": request.GET.get("saved") == "1" and not form.is_bound, "home": home_for(user)}
    return _portal(request, "portals/settings.html", {}, page=page)
