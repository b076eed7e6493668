"""Where every benchmark's headline figures go: ``bench/results.json`` (one entry per figure,
replaced when the same figure is measured again) and one table in the shape BENCHMARKS.md opens
with (figure, target, now, baseline, ratio, machine, date, command).

A figure is a dict: ``figure`` (its name, the key), ``target`` (words, e.g. "p99 < 25 ms"),
``now`` and ``baseline`` (words with units, e.g. "18.2 ms p99"), ``ratio`` (a number: now over
baseline, in the direction where more is worse), ``met`` (True, False or None when the figure has
no target), ``command`` and any details the bench wants kept.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def record(figures: list[dict], path: Path = RESULTS) -> None:
    """Merge ``figures`` into ``path`` (by figure name), keeping every other bench's figures."""
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = {}
    entries = {entry["figure"]: entry for entry in current.get("figures", [])}
    for figure in figures:
        entries[figure["figure"]] = {"machine": machine(), "date": stamp(), **figure}
    path.write_text(json.dumps({"figures": list(entries.values())}, indent=2) + "\n")


def table(figures: list[dict]) -> str:
    head = ("figure", "target", "now", "baseline", "ratio", "met")
    rows = [
        (
            f["figure"],
            f.get("target") or "-",
            f["now"],
            f["baseline"],
            f"{f['ratio']:.2f}x" if isinstance(f.get("ratio"), int | float) else "-",
            {True: "yes", False: "NO", None: "-"}[f.get("met")],
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
