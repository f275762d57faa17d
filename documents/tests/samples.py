"""Files to upload, made here in memory: clean ones of each accepted type, and the kinds we refuse."""

import io

import pikepdf
from PIL import Image

from tests.support.clamd import EICAR

EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825


def pdf(*, extra=None, content: bytes = b"BT /F1 12 Tf 72 720 Td (Blood test) Tj ET") -> bytes:
    """A one-page PDF; `extra(pdf)` may add to it before it is written (uncompressed, so bytes stay findable)."""
    document = pikepdf.new()
    document.add_blank_page()
    document.pages[0].Contents = document.make_stream(content)
    if extra:
        extra(document)
    out = io.BytesIO()
    document.save(out, compress_streams=False)
    return out.getvalue()


def pdf_with_open_action_js() -> bytes:
    def add(document):
        action = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        document.Root.OpenAction = document.make_indirect(action)

    return pdf(extra=add)


def pdf_with_names_javascript() -> bytes:
    def add(document):
        action = document.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("x=1")))
        tree = pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("start"), action]))
        document.Root.Names = pikepdf.Dictionary(JavaScript=document.make_indirect(tree))

    return pdf(extra=add)


def pdf_with_open_action_only() -> bytes:
    def add(document):
        # Not a script: a plain "go to page 1" on open. Still an action on open, refused.
        document.Root.OpenAction = pikepdf.Array([document.pages[0].obj, pikepdf.Name.Fit])

    return pdf(extra=add)


def pdf_with_page_aa() -> bytes:
    def add(document):
        uri = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.com/"))
        document.pages[0].obj.AA = pikepdf.Dictionary(O=uri)

    return pdf(extra=add)


def pdf_with_embedded_file() -> bytes:
    def add(document):
        document.attachments["notes.txt"] = pikepdf.AttachedFileSpec(document, b"hello")

    return pdf(extra=add)


def pdf_with_eicar() -> bytes:
    """A clean-looking PDF that carries the EICAR test string in its page content."""
    return pdf(content=b"% " + EICAR + b"\n")


def image(fmt: str, *, size=(40, 20), exif=None, **save) -> bytes:
    """An image: left half red, right half blue (so a rotation shows)."""
    picture = Image.new("RGB", size, "red")
    picture.paste("blue", (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    if exif is not None:
        save["exif"] = exif
    picture.save(out, format=fmt, **save)
    return out.getvalue()


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: stored sideways with orientation 6, GPS position, a comment and XMP."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # the viewer turns it 90° clockwise: upright it is 20 wide, 40 tall
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(EXIF_GPS_IFD)
    gps[1], gps[2] = "N", (23.0, 48.0, 0.0)
    return image(
        "JPEG",
        exif=exif,
        comment=b"patient: Pat",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Pat at home</x:xmpmeta>',
    )


EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def truncated_png() -> bytes:
    data = image("PNG", size=(200, 200))
    return data[: len(data) // 2]
