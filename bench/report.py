"""Results as JSON (one file per scenario and layer) and PNG plots, under docs/bench/."""

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from scenarios import FIGURES, median_or_none
from servers import ROOT


def machine() -> dict:
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
    }


def git_commit() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def summarize(scenario: str, runs: dict) -> dict:
    """Medians over runs per target and socket count, and app/floor ratios of those medians."""
    medians: dict = {}
    for target, by_count in runs.items():
        medians[target] = {
            str(n): {key: median_or_none(r.get(key) for r in results) for key in FIGURES[scenario]}
            for n, results in by_count.items()
        }
    ratios: dict = {}
    for n, app in medians.get("app", {}).items():
        floor = medians.get("floor", {}).get(n)
        if not floor:
            continue
        ratios[n] = {
            key: (app[key] / floor[key] if app[key] is not None and floor[key] else None) for key in FIGURES[scenario]
        }
    return {"medians": medians, "ratio_app_over_floor": ratios}


def write(
    out: Path, scenario: str, layer: str, params: dict, runs: dict, started: str, machine_start: dict, suffix: str = ""
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "scenario": scenario,
        "layer": layer,
        "started": started,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_start,
        "machine_at_end": machine(),
        "git": git_commit(),
        "parameters": params,
        **summarize(scenario, runs),
        "runs": {target: {str(n): results for n, results in by_count.items()} for target, by_count in runs.items()},
    }
    path = out / f"{scenario}-{layer}{suffix}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def plot(path: Path) -> Path:
    """One panel per figure: the median against the socket count, app vs floor (runs as dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    document = json.loads(path.read_text())
    scenario, keys = document["scenario"], FIGURES[document["scenario"]]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for target, style in (("app", "o-"), ("floor", "s--")):
            by_count = document["medians"].get(target, {})
            counts = sorted(int(n) for n in by_count)
            points = [(n, by_count[str(n)][key]) for n in counts if by_count[str(n)][key] is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=target)
            for n, results in document["runs"].get(target, {}).items():
                values = [r.get(key) for r in results if isinstance(r.get(key), int | float)]
                if values:
                    ax.scatter([int(n)] * len(values), values, s=8, alpha=0.4)
        ax.set_xlabel("sockets (N)")
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.set_xscale("log")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(
        f"{scenario}, layer {document['layer']}: app vs floor "
        f"({document['git']['commit'][:8]}, {document['started'][:10]})",
        fontsize=11,
    )
    fig.tight_layout()
    png = path.with_suffix(".png")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png
