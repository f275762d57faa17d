"""What an upload is, judged from its bytes, and the form it is stored in.

The type comes from the first bytes (`filetype`, pure Python: no system library to install, unlike
libmagic), and is then proved by parsing the whole file: a PDF is opened with pikepdf (qpdf) and
walked for active content; an image is decoded by Pillow and re-encoded, upright and without its
metadata. So a file that merely starts like a PDF or a PNG does not pass. Anything else, or
anything these parsers cannot read, is refused (the API's 415).
"""

import io
import threading
import warnings
from dataclasses import dataclass

import filetype
import pikepdf
from django.core.files.base import ContentFile, File
from django.utils.translation import gettext
from PIL import Image, ImageOps

PDF = "application/pdf"
# The accepted types, each with Pillow's name for the format (None: not an image).
ACCEPTED = {PDF: None, "image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
EXTENSIONS = {PDF: ".pdf", "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

# Keys of a PDF dictionary that run something or carry other files: JavaScript (an action's /JS, the
# names tree's /JavaScript), actions on open (/OpenAction) or on events (/AA, pages and fields
# alike), embedded files (the names tree's /EmbeddedFiles, a file spec's /EF, a stream of /Type
# /EmbeddedFile) and actions that launch programs or submit forms elsewhere.
PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/OpenAction", "/AA", "/EmbeddedFiles", "/EF", "/RichMedia"}
PDF_ACTIVE_NAMES = {"/JavaScript", "/EmbeddedFile", "/Launch", "/SubmitForm", "/ImportData", "/RichMedia"}

# Metadata an image may keep: colour (not about anyone) and which colour is transparent.
IMAGE_KEEP_INFO = ("icc_profile", "transparency")

# Images decoded at once by one server process. A 12-megapixel phone photo is some 36 MB decoded and
# as much again turned upright: four at once grew daphne by 300 MiB (bench/documents.py). More uploads
# wait here, their bytes in the upload's temporary file, not in memory.
DECODES_AT_ONCE = 2
_decoding = threading.BoundedSemaphore(DECODES_AT_ONCE)


class Refused(Exception):
    """The bytes are not a file we accept; the message says why, for the uploader."""


@dataclass
class Inspected:
    content_type: str
    content: File  # what to store: the upload itself (PDF) or the re-encoded image
    size: int


def inspect_upload(upload: File) -> Inspected:
    """Judge `upload` by its bytes; raises Refused. Reads it whole (a PDF) or decodes it (an image)."""
    upload.seek(0)
    head = upload.read(512)
    upload.seek(0)
    guess = filetype.guess(head)
    content_type = guess.mime if guess else None
    if content_type not in ACCEPTED:
        raise Refused(gettext("Only PDF, JPEG, PNG and WEBP files are accepted."))
    if content_type == PDF:
        _check_pdf(upload)
        upload.seek(0)
        return Inspected(content_type=PDF, content=upload, size=upload.size)
    data = _reencode(upload, ACCEPTED[content_type])
    return Inspected(content_type=content_type, content=ContentFile(data), size=len(data))


def _check_pdf(upload: File) -> None:
    try:
        with pikepdf.open(upload) as pdf:
            for obj in pdf.objects:
                _refuse_active(obj)
            _refuse_active(pdf.trailer)
    except pikepdf.PasswordError:
        raise Refused(gettext("Password-protected PDFs are not accepted.")) from None
    except pikepdf.PdfError:
        raise Refused(gettext("This PDF cannot be read.")) from None


def _refuse_active(obj) -> None:
    """Walk one object and its direct (not indirect: those are walked on their own) children."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Stream):
            item = item.stream_dict
        if isinstance(item, pikepdf.Dictionary):
            keys = set(item.keys())
            if keys & PDF_ACTIVE_KEYS or any(
                str(item.get(key)) in PDF_ACTIVE_NAMES for key in ("/S", "/Type", "/Subtype") if key in keys
            ):
                raise Refused(gettext("PDFs with scripts, automatic actions or embedded files are not accepted."))
            stack.extend(value for value in item.values() if _direct(value))
        elif isinstance(item, pikepdf.Array):
            stack.extend(value for value in item if _direct(value))


def _direct(value) -> bool:
    # pikepdf hands numbers and booleans back as Python values: nothing to walk there.
    return isinstance(value, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)) and not value.is_indirect


def _reencode(upload: File, image_format: str) -> bytes:
    """The image decoded and written again: upright as its orientation tag said, without EXIF
    (GPS included), XMP or comments."""
    try:
        with _decoding, warnings.catch_warnings():
            # Pillow only warns below twice its pixel limit: a bomb is refused at the limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                if image.format != image_format:
                    raise Refused(gettext("The image's content does not match its type."))
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright.info = {key: image.info[key] for key in IMAGE_KEEP_INFO if key in image.info}
                out = io.BytesIO()
                options = {"quality": 92} if image_format in ("JPEG", "WEBP") else {}
                upright.save(out, format=image_format, **options)
    except Refused:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        # A truncated or corrupt image, or one too large to decode safely.
        raise Refused(gettext("This image cannot be read.")) from None
    return out.getvalue()


def download_name(original_name: str, content_type: str) -> str:
    """The name a download is saved under: the uploaded one, with the extension of what it really is."""
    extension = EXTENSIONS.get(content_type, "")
    name = original_name or "document"
    return name if name.lower().endswith(extension) else name + extension
