"""How long a prescription's PDF takes to make, in English and in Bangla (run by hand).

    .venv/bin/python bench/prescription_pdf.py [--pdfs 50] [--runs 3] [--items 4]

Renders `--pdfs` PDFs per language and run, one after another in this process, pinned to one core
(where the OS allows it), with a realistic prescription: `--items` medicines with Bangla dose and
instructions for the Bangla patient, a Bangla diagnosis and advice. A PDF's time is what the request
spends in `documents.pdf.render_prescription`: the template, WeasyPrint, and the Bangla text layer
(documents/pdf_text.py). The first PDF of the process (fonts loaded, caches warm) is timed apart and
left out. Prints p50 and p99 per PDF for each language, each the median over the runs, in wall-clock
time and in this process's CPU time (which a busy machine's other work does not inflate); the goal is
p99 ≤ 300 ms.
"""

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent

EN_ITEMS = [
    ("Paracetamol 500 mg", "1 tablet", "3 times a day", "5 days", "After meals"),
    ("Cetirizine 10 mg", "1 tablet", "At night", "7 days", "May cause drowsiness"),
    ("Oral Rehydration Salts", "1 sachet", "After each loose stool", "3 days", ""),
    ("Omeprazole 20 mg", "1 capsule", "Every morning", "14 days", "30 minutes before breakfast"),
]
BN_ITEMS = [
    ("Paracetamol 500 mg", "১টি ট্যাবলেট", "দিনে ৩ বার", "৫ দিন", "খাবারের পরে"),
    ("Cetirizine 10 mg", "১টি", "রাতে", "৭ দিন", "ঘুম ঘুম ভাব হতে পারে"),
    ("Oral Rehydration Salts", "১ প্যাকেট", "প্রতিবার পাতলা পায়খানার পরে", "৩ দিন", ""),
    ("Omeprazole 20 mg", "১টি ক্যাপসুল", "সকালে", "১৪ দিন", "খাবারের ৩০ মিনিট আগে"),
]
TEXTS = {
    "en": ("Viral fever with common cold", "Drink plenty of water and rest. Come back if the fever lasts."),
    "bn": ("জ্বর ও সর্দি", "প্রচুর পানি পান করুন এবং বিশ্রাম নিন। জ্বর তিন দিনের বেশি থাকলে আবার আসুন।"),
}


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")  # no query is made
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def sample(language: str, items: int):
    from django.utils import timezone

    from documents.prescriptions import prescription_clean

    rows = (EN_ITEMS if language == "en" else BN_ITEMS) * (items // 4 + 1)
    diagnosis, advice = TEXTS[language]
    fields = prescription_clean(
        diagnosis=diagnosis,
        items=[
            dict(zip(("medicine", "dose", "frequency", "duration", "instructions"), row, strict=True))
            for row in rows[:items]
        ],
        advice=advice,
        follow_up=(timezone.localdate() + datetime.timedelta(days=7)).isoformat(),
    )
    patient = SimpleNamespace(name="রহিমা খাতুন" if language == "bn" else "Pat Patient", language=language)
    doctor = SimpleNamespace(user=SimpleNamespace(name="Dr. Rahman"), specialty="Cardiology")
    appointment = SimpleNamespace(patient=patient, doctor=doctor, date=timezone.localdate())
    return appointment, fields


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=4)
    args = parser.parse_args()
    setup()
    from django.utils import timezone

    from documents.pdf import render_prescription

    samples = {language: sample(language, args.items) for language in ("en", "bn")}
    start = time.perf_counter()
    render_prescription(appointment=samples["en"][0], fields=samples["en"][1], version=1, issued_at=timezone.now())
    print(f"first PDF of the process (fonts loaded): {1000 * (time.perf_counter() - start):.0f} ms")
    figures = {language: {"p50": [], "p99": [], "cpu50": [], "cpu99": [], "size": 0} for language in samples}
    for _ in range(args.runs):
        for language, (appointment, fields) in samples.items():
            times, cpu = [], []
            for _ in range(args.pdfs):
                start, start_cpu = time.perf_counter(), time.process_time()
                pdf = render_prescription(appointment=appointment, fields=fields, version=1, issued_at=timezone.now())
                times.append(1000 * (time.perf_counter() - start))
                cpu.append(1000 * (time.process_time() - start_cpu))
            figures[language]["p50"].append(percentile(times, 50))
            figures[language]["p99"].append(percentile(times, 99))
            figures[language]["cpu50"].append(percentile(cpu, 50))
            figures[language]["cpu99"].append(percentile(cpu, 99))
            figures[language]["size"] = len(pdf)
    print(f"{args.pdfs} PDFs × {args.runs} runs per language, {args.items} medicines, one core; medians of the runs:")
    for language, figure in figures.items():
        p50, p99 = statistics.median(figure["p50"]), statistics.median(figure["p99"])
        cpu50, cpu99 = statistics.median(figure["cpu50"]), statistics.median(figure["cpu99"])
        print(
            f"  {language}: p50 {p50:.0f} ms, p99 {p99:.0f} ms per PDF"
            f" (CPU time p50 {cpu50:.0f} ms, p99 {cpu99:.0f} ms), {figure['size'] // 1024} KiB"
        )


if __name__ == "__main__":
    main()
