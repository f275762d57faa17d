"""Print the medians of bench results (docs/bench/**/*.json) as a Markdown table: app, floor, app/floor.

.venv/bin/python bench/table.py docs/bench/n1000/*.json
"""

import json
import sys
from pathlib import Path


def rows(path: Path):
    result = json.loads(path.read_text())
    medians, ratios = result["medians"], result["ratio_app_over_floor"]
    for n in sorted(medians.get("app", {}), key=int):
        app, floor = medians["app"][n], medians.get("floor", {}).get(n, {})
        for figure, value in app.items():
            if value is None and figure not in floor:
                continue  # a figure of clusters only (--nodes), in a run without one
            ratio = ratios.get(n, {}).get(figure)
            yield result["scenario"], result["layer"], n, figure, value, floor.get(figure), ratio


def show(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def main(paths: list[str]) -> None:
    print("| scenario | layer | sockets | figure | app | floor | app / floor |")
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        for scenario, layer, n, figure, app, floor, ratio in rows(Path(path)):
            cells = [scenario, layer, f"{int(n):,}", figure, show(app), show(floor), show(ratio)]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
