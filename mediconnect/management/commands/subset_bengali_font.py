"""Build the portals' self-hosted Bengali webfont: Noto Sans Bengali cut down to the Bengali block.

The source is Debian's fonts-noto-core (SIL Open Font License 1.1): `apt-get install fonts-noto-core`,
or `apt-get download fonts-noto-core && dpkg -x fonts-noto-core_*.deb x` and pass the .ttf found
under x/. Needs fontTools and brotli (requirements-bench.txt, requirements-dev.txt).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

DEBIAN_PATH = "/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf"
# The Bengali block (names typed in Bangla need more than the catalog's letters), the dandas,
# the joiners and the dotted circle that shaping puts under a lone vowel sign. The @font-face's
# unicode-range in static/css/app.css is the same list.
UNICODES = "U+0964-0965,U+0980-09FF,U+200C-200D,U+25CC"
OUTPUT = "fonts/noto-sans-bengali-subset.woff2"


class Command(BaseCommand):
    help = "Subset Noto Sans Bengali into static/fonts/ as WOFF2 (the portals' Bangla font)."

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", default=DEBIAN_PATH, help=f"the .ttf (default {DEBIAN_PATH})")

    def handle(self, *args, source, **options):
        from fontTools import subset

        output = Path(settings.BASE_DIR) / "static" / OUTPUT
        output.parent.mkdir(parents=True, exist_ok=True)
        subset.main(
            [
                source,
                f"--unicodes={UNICODES}",
                "--layout-features=*",  # conjuncts and vowel signs are shaped through GSUB/GPOS
                "--no-hinting",  # a third of the size; screens render the outlines well unhinted
                "--flavor=woff2",
                f"--output-file={output}",
            ]
        )
        self.stdout.write(f"{output.relative_to(settings.BASE_DIR)}: {output.stat().st_size} bytes")
