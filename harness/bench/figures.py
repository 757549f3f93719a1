"""Benchmark figures: what was measured, how it prints as a table, and its JSON form for tracking."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host import os_image


@dataclass
class Figure:
    """One row of the table. `value` is in `unit`; `measurements` holds every number behind the row,
    each key ending in its unit (`_s`, `_ms`, `_mib`, `_gbit_per_s`, `_per_s`) or being a count.
    A figure that could not be measured has no value and says why in `not_measured`."""

    key: str
    label: str
    value: float | None
    unit: str
    shown: str = ""
    detail: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    not_measured: str | None = None

    @classmethod
    def missing(cls, key: str, label: str, unit: str, reason: str) -> "Figure":
        return cls(key, label, None, unit, not_measured=reason)

    def cells(self) -> tuple[str, str, str]:
        if self.not_measured is not None:
            return self.label, "-", f"not measured: {self.not_measured}"
        return self.label, self.shown or f"{self.value:g} {self.unit}", self.detail

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": self.key, "label": self.label, "value": self.value, "unit": self.unit}
        if self.not_measured is not None:
            entry["not_measured"] = self.not_measured
        else:
            entry["measurements"] = self.measurements
        return entry


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def machine() -> dict[str, Any]:
    """The machine the figures come from, and how busy it was when the run started."""
    return {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gib": _memory_gib(),
            "os": os_image(), "kernel": platform.release(), "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def table(figures: list[Figure], host: dict[str, Any]) -> str:
    rows = [("FIGURE", "VALUE", "DETAIL")] + [f.cells() for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip() for row in rows]
    load = " ".join(f"{x:g}" for x in host["load_average_at_start"])
    lines.append("")
    lines.append(f"machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_gib']:g} GiB, {host['os']}, "
                 f"kernel {host['kernel']}, Python {host['python']}; load average at start {load}; {host['date']}")
    return "\n".join(lines)


def document(figures: list[Figure], host: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """What `--json FILE` writes."""
    return {"machine": host, "options": options, "figures": [f.as_json() for f in figures]}
