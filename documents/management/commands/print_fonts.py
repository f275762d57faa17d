"""Build the fonts the prescription PDFs are set in (static/fonts/print/), from Debian's fonts-noto-core.

Noto Sans Bengali goes in whole (Bengali letters, its own Latin digits and punctuation, every
shaping rule); Noto Sans is cut to the Latin letters and punctuation a prescription uses, so the
pair weighs about half a megabyte. Both are under the SIL Open Font License 1.1 (static/fonts/OFL.txt).

The source: `apt-get install fonts-noto-core`, or `apt-get download fonts-noto-core && dpkg -x
fonts-noto-core_*.deb x` and pass x/usr/share/fonts/truetype/noto. Needs fontTools (requirements.txt,
through WeasyPrint).
"""

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

DEBIAN_DIR = "/usr/share/fonts/truetype/noto"
# Basic Latin, Latin-1 and Latin Extended-A (names), general punctuation (dashes, quotes, bullet,
# ellipsis), the degree, micro and multiplication signs are inside Latin-1.
LATIN = "U+0020-007E,U+00A0-017F,U+2010-2027,U+2030-203A,U+20AC,U+211E,U+2122,U+2190-2193,U+2212"
OUTPUT = Path("fonts") / "print"


class Command(BaseCommand):
    help = "Copy Noto Sans Bengali and a Latin cut of Noto Sans into static/fonts/print/ (the prescriptions' fonts)."

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", default=DEBIAN_DIR, help=f"the .ttf files' directory ({DEBIAN_DIR})")

    def handle(self, *args, source, **options):
        from fontTools import subset

        output = Path(settings.BASE_DIR) / "static" / OUTPUT
        output.mkdir(parents=True, exist_ok=True)
        for weight in ("Regular", "Bold"):
            shutil.copyfile(Path(source) / f"NotoSansBengali-{weight}.ttf", output / f"NotoSansBengali-{weight}.ttf")
            subset.main(
                [
                    str(Path(source) / f"NotoSans-{weight}.ttf"),
                    f"--unicodes={LATIN}",
                    "--layout-features=*",
                    "--no-hinting",
                    f"--output-file={output / f'NotoSansLatin-{weight}.ttf'}",
                ]
            )
        for path in sorted(output.glob("*.ttf")):
            self.stdout.write(f"{path.relative_to(settings.BASE_DIR)}: {path.stat().st_size} bytes")
