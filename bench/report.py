"""What a benchmark prints and keeps: the machine, a plain-text table, a JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = None
    if shutil.which("node"):
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "node": node,
        "system": f"{platform.system()} {platform.release()}",
        # Other work on the machine skews every figure: keep what the load was at the start.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def describe_machine(info: dict[str, Any]) -> str:
    node = f", Node.js {info['node']}" if info.get("node") else ""
    return (
        f"{info['nproc']} × {info['cpu']}, Python {info['python']}{node}, {info['system']}"
        f" (load average {info['load_average_1m']} at the start)"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable as plain text too); numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if num else "-" * (w + 2)
        for w, num in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def write(name: str, data: dict[str, Any], directory: Path | None = None) -> Path:
    """`<directory>/<name>-<timestamp>.json`, and `<name>.json` pointing at the latest."""
    directory = directory or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    path = directory / f"{name}-{stamp}.json"
    path.write_text(text)
    (directory / f"{name}.json").write_text(text)
    return path


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)
