"""The video visit's page, `/visit/{appointment_id}/`: the call itself runs in static/js/visit.js.

Only the appointment's patient and its doctor see the page; anyone else gets the site's 404 (an
appointment's existence is not told to others). Whether the call may start now (a VIDEO appointment,
CONFIRMED, inside its window) is the API's answer to `GET /api/appointments/{id}/call/`, which the
page asks for and shows: the page itself opens whenever it is asked for.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from appointments.models import Appointment
from mediconnect.pages.portal import socket_config, socket_page_strings
from notifications import replay


def _visit_strings() -> dict:
    """The words visit.js shows, in the page's language (`{name}` is filled in by the script)."""
    return {
        **socket_page_strings(),
        "state.waiting": _("Waiting for {name} to join…"),
        "state.connecting": _("Connecting the call…"),
        "state.connected": _("Connected"),
        "state.reconnecting": _("Connection lost — reconnecting…"),
        "state.ended": _("The visit has ended."),
        "state.failed": _("The call could not be connected."),
        "state.no_media": _("Camera and microphone needed"),
        "state.closed": _("Not open now"),
        "call.lost": _("The connection to {name} was lost. Check your internet connection, then try again."),
        "media.denied": _(
            "MediConnect may not use your camera or microphone. Allow them for this site "
            "(the camera icon in the address bar), then try again."
        ),
        "media.missing": _("No camera or microphone was found. Connect one, then try again."),
        "media.busy": _("Your camera or microphone is in use by another app. Close it, then try again."),
        "media.no_camera": _("No camera found: you take part by voice only."),
        "call.closed": _("This video visit is not open now. It opens 15 minutes before its time."),
        "call.unavailable": _("Could not reach the server. Check your connection and try again."),
        "call.mute": _("Mute"),
        "call.unmute": _("Unmute"),
        "call.camera_off": _("Camera off"),
        "call.camera_on": _("Camera on"),
        "call.audio_only": _("Voice only"),
        "call.peer_camera_off": _("{name}'s camera is off"),
        "call.peer_muted": _("{name} is muted"),
        "call.route_relay": _("Through the relay server"),
        "call.route_direct": _("Direct"),
    }


@login_required
def visit_page(request, appointment_id: int):
    appointment = Appointment.objects.select_related("doctor__user", "patient").filter(pk=appointment_id).first()
    user = request.user
    if appointment is None or user.pk not in (appointment.patient_id, appointment.doctor.user_id):
        raise Http404
    is_patient = user.pk == appointment.patient_id
    peer = appointment.doctor.user if is_patient else appointment.patient
    config = {
        "user_id": user.pk,
        "role": user.role,
        "language": get_language(),
        "csrf_token": get_token(request),
        "last_event_id": replay.last_seq(user.pk) or 0,
        **socket_config(),
        "appointment_id": appointment.pk,
        # W3C perfect negotiation: the patient's side is the polite one (it yields on crossing offers).
        "polite": is_patient,
        "peer_name": peer.name,
        "home": "/patient/" if is_patient else "/doctor/",
        # Relay-only ICE (every packet through TURN) for deployments that want it; `?relay=1` asks for
        # it on one page (the browser tests prove the relay with it).
        "force_relay": settings.VIDEO_FORCE_RELAY or request.GET.get("relay") == "1",
    }
    context = {"config": config, "strings": _visit_strings(), "appointment": appointment, "peer": peer}
    return render(request, "portals/visit.html", context)
