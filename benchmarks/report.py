"""What both reports are made of: statistics over repetitions, Markdown tables, the facts of a run
(machine, packages, command) and progress lines on stderr.

Medians are used because this 2-core VM is noisy (single runs vary by tens of percent); the
min-max range goes next to every median so that a reader can tell a real gap from noise. The
reports are Markdown so that the same text serves the terminal, a file and a results page.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

PACKAGES = ("udptcp", "uvloop", "aioquic", "pylsqpack", "kcp", "cryptography")
ERROR_CHARS = 160
"""How much of a failed run's error a table cell shows (the JSON output keeps all of it)."""


class Spread(NamedTuple):
    """The median of some repetitions and their range."""

    median: float
    low: float
    high: float


def spread(values: Iterable[float | None]) -> Spread | None:
    """Median, min and max of the values that exist (None and NaN are left out); None if none."""
    found = [v for v in values if v is not None and not math.isnan(v)]
    return Spread(statistics.median(found), min(found), max(found)) if found else None


def number(value: float) -> str:
    """A rate for a table: whole numbers from 1000 up, one decimal below."""
    return f"{value:.0f}" if value >= 1000 else f"{value:.1f}"


def percent(share: float) -> str:
    """``0.95`` -> ``95 %``."""
    return f"{share:.0%}".replace("%", " %")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; cells must not contain ``|`` (see :func:`error_cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def error_cell(text: str) -> str:
    """An error message made fit for one table cell."""
    return text.replace("|", "/").replace("\n", " ")[:ERROR_CHARS]


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def clock(seconds: float) -> str:
    """``75.3`` -> ``1m15.3s``."""
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


class RunCounter:
    """Numbers the runs of a long benchmark (``[ 3/30]``) and says how long it has been going."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def next(self) -> str:
        """The label of the next run."""
        self.done += 1
        return f"[{self.done:>{len(str(self.total))}}/{self.total}]"

    def elapsed(self) -> str:
        return clock(time.monotonic() - self.started)


def environment() -> dict[str, str]:
    """Facts about the machine and software that the numbers depend on."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {"nproc": str(len(os.sched_getaffinity(0))), "cpu": cpu_model,
             "kernel": platform.release(), "python": platform.python_version()}
    for knob in ("rmem_max", "wmem_max", "rmem_default"):
        try:
            facts[f"net.core.{knob}"] = Path(f"/proc/sys/net/core/{knob}").read_text().strip()
        except OSError:
            facts[f"net.core.{knob}"] = "unknown"
    for package in PACKAGES:
        try:
            facts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            facts[package] = "not installed"
    return facts


def facts_lines(env: dict[str, str]) -> list[str]:
    """The machine and package lines of a report's header."""
    return [f"- Machine: nproc {env['nproc']}, {env['cpu']}, kernel {env['kernel']}, Python {env['python']}; "
            f"net.core.rmem_max {env['net.core.rmem_max']}, wmem_max {env['net.core.wmem_max']}",
            "- Packages: " + ", ".join(f"{p} {env[p]}" for p in PACKAGES)]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def command_line(module: str, argv: list[str]) -> str:
    """How this run was started, as a user would type it (``.venv/bin/python -m module ...``)."""
    interpreter = sys.executable
    with contextlib.suppress(ValueError):  # outside the current directory: as it is
        interpreter = str(Path(interpreter).relative_to(Path.cwd()))
    return shlex.join([interpreter, "-m", module, *argv])


def write(path: Path | None, text: str) -> None:
    """Write one output file (``--markdown``, ``--json``), creating its folder; say so on stderr."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    progress(f"wrote {path}")
