"""A prescription as a PDF: the template documents/prescription.html, in the patient's language, set by
WeasyPrint (Pango and HarfBuzz shape the Bangla) in the fonts under static/fonts/print/.

The fonts are the repository's own (`manage.py print_fonts` made them from Debian's fonts-noto-core),
named in @font-face by file, so a PDF looks the same on every machine whatever fonts it has installed.
"""

import datetime
import functools
import threading
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .pdf_text import with_actual_text

FONTS = Path(settings.BASE_DIR) / "static" / "fonts" / "print"
# One rendering at a time per process: the font configuration is shared, and WeasyPrint does not
# promise that it may be used by two threads at once.
_lock = threading.Lock()


@functools.cache
def weasyprint():
    """The weasyprint module, imported without its side effect on the uploads' checks.

    Importing it sets Pillow's process-wide ImageFile.LOAD_TRUNCATED_IMAGES, after which a truncated
    upload would be decoded padded with grey instead of refused (documents.inspection). A prescription
    has no images, so the flag is put back as it was.
    """
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    import weasyprint as module

    ImageFile.LOAD_TRUNCATED_IMAGES = before
    return module


@functools.cache
def _font_config():
    weasyprint()
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@functools.cache
def _fetcher():
    """A URL fetcher that opens the print fonts and nothing else: no network, no other file."""
    weasyprint()
    from weasyprint.urls import URLFetcher

    class FontsOnly(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith(FONTS.as_uri() + "/"):
                raise ValueError("a prescription's PDF loads the print fonts only")
            return super().fetch(url, headers)

    return FontsOnly(allowed_protocols=["file"], fail_on_errors=True)


def render_prescription(*, appointment, fields, version: int, issued_at: datetime.datetime) -> bytes:
    """The PDF of one version of `appointment`'s prescription (`fields` a PrescriptionInput), in its patient's
    language. Needs the appointment's `patient` and `doctor__user` loaded."""
    HTML = weasyprint().HTML

    patient = appointment.patient
    language = patient.language if patient.language in ("en", "bn") else "en"
    with translation.override(language):
        html = render_to_string(
            "documents/prescription.html",
            {
                "language": language,
                "fonts": FONTS.as_uri(),
                "clinic": settings.CLINIC_NAME,
                "doctor": appointment.doctor.user.name,
                "specialty": appointment.doctor.specialty,
                "patient": patient.name,
                "appointment": appointment,
                "issued": timezone.localtime(issued_at),
                "version": version,
                "fields": fields,
            },
        )
    with _lock:
        config = _font_config()
        document = HTML(string=html, base_url=FONTS.as_uri() + "/", url_fetcher=_fetcher())
        # Tagged: each line of text in a marked-content sequence of its own, which gets its Bangla's ActualText.
        pdf = document.write_pdf(font_config=config, pdf_tags=True)
    return with_actual_text(pdf, html)
