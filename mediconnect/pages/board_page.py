"""The waiting-room display board's page: server-rendered as it stands, then kept live by static/js/board.js."""

from django.conf import settings
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _

from mediconnect.pages.portal import connection_strings, socket_config
from queues.selectors import board_by_token
from queues.services import board_queues

BANGLA_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")


def numerals(value, language: str) -> str:
    """A number as the page's language writes it: Bangla digits in Bangla."""
    text = str(value)
    return text.translate(BANGLA_DIGITS) if language == "bn" else text


def _strings() -> dict:
    """Text the board's script shows (`{name}` marks a value it fills in)."""
    return {
        **connection_strings(),
        "conn.disconnected": _("Reconnecting…"),
        "none_waiting": _("No one waiting"),
        "per_patient": _("{minutes} min per patient"),
        "announce": _("Number {number}, please go to {doctor}."),
        "gone": _("This board's link has changed. Ask the clinic staff for the new link."),
    }


def board_page(request, token: str):
    board = board_by_token(token)
    wanted = request.GET.get("lang")
    if wanted in dict(settings.LANGUAGES):
        translation.activate(wanted)
        request.LANGUAGE_CODE = wanted
    language = translation.get_language() or settings.LANGUAGE_CODE
    language = "bn" if language.startswith("bn") else "en"
    if board is None:
        return render(request, "board/missing.html", status=404)
    strings = _strings()
    queues = [
        {
            **queue,
            "current_text": numerals(queue["current_queue"], language),
            "next_text": [numerals(number, language) for number in queue["next"]],
            "wait_text": strings["per_patient"].format(minutes=numerals(queue["estimated_wait"], language)),
        }
        for queue in board_queues(board=board)
    ]
    config = {
        "token": board.token,
        "language": language,
        "time_zone": settings.TIME_ZONE,
        "strings": strings,
        **socket_config(),
    }
    return render(request, "board/board.html", {"board": board, "queues": queues, "config": config})
