"""Draw the installed app's icons into static/icons/ (committed; run again only to change the design).

The mark: a white medical cross on the portals' teal (--accent in static/css/app.css), with a small
dot at its lower right corner for "connected". Drawn at four times the size and scaled down, so the
edges are smooth. Outputs:

- icon-192.png, icon-512.png: purpose "any", a rounded square on a transparent ground.
- maskable-512.png: purpose "maskable", teal to every edge; the mark stays inside the central circle
  of 40 % radius that every launcher's mask keeps (the "safe zone").
- apple-touch-icon.png (180 × 180): iOS rounds the corners itself and shows transparency as black.
- badge-96.png: white on transparent, for a notification's small status-bar badge (Android shows only
  the alpha channel).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

TEAL = (10, 125, 110, 255)
WHITE = (255, 255, 255, 255)
DOT = (110, 231, 160, 255)  # the connection indicator's "live" green
SUPERSAMPLE = 4


def _mark(draw, *, size: int, scale: float, colour=WHITE, dot=DOT, ring=TEAL) -> None:
    """The cross and its dot, centred, the cross's arms `scale` of `size` long."""
    centre = size / 2
    arm = size * scale / 2  # half the cross's length
    bar = arm * 0.36  # half a bar's width
    radius = bar * 0.55
    draw.rounded_rectangle((centre - bar, centre - arm, centre + bar, centre + arm), radius=radius, fill=colour)
    draw.rounded_rectangle((centre - arm, centre - bar, centre + arm, centre + bar), radius=radius, fill=colour)
    if dot is not None:
        # The dot sits in the cross's lower right notch, ringed with the ground so it reads apart.
        r = arm * 0.3
        cx = cy = centre + arm * 0.62
        gap = r * 0.35
        draw.ellipse((cx - r - gap, cy - r - gap, cx + r + gap, cy + r + gap), fill=ring)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=dot)


def draw_icon(size: int, *, kind: str):
    """One icon of `size` pixels: kind "any", "maskable", "apple" or "badge"."""
    from PIL import Image, ImageDraw

    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if kind == "any":
        margin = big * 0.04
        draw.rounded_rectangle((margin, margin, big - margin, big - margin), radius=big * 0.22, fill=TEAL)
        _mark(draw, size=big, scale=0.56)
    elif kind in ("maskable", "apple"):
        draw.rectangle((0, 0, big, big), fill=TEAL)
        # Inside the safe zone: the cross's corners reach at most 0.35 × size from the centre.
        _mark(draw, size=big, scale=0.46 if kind == "maskable" else 0.56)
    elif kind == "badge":
        _mark(draw, size=big, scale=0.86, dot=None)
    else:
        raise ValueError(kind)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    if kind == "apple":
        image = image.convert("RGB")
    return image


ICONS = {
    "icons/icon-192.png": (192, "any"),
    "icons/icon-512.png": (512, "any"),
    "icons/maskable-512.png": (512, "maskable"),
    "icons/apple-touch-icon.png": (180, "apple"),
    "icons/badge-96.png": (96, "badge"),
}


class Command(BaseCommand):
    help = "Draw the installable app's icons into static/icons/ (PNG)."

    def handle(self, *args, **options):
        root = Path(settings.BASE_DIR) / "static"
        for name, (size, kind) in ICONS.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_icon(size, kind=kind).save(path, optimize=True)
            self.stdout.write(f"{name}: {size}×{size} {kind}, {path.stat().st_size} bytes")
