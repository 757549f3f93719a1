"""Durations as istiod's flags and messages spell them (Go's `time.ParseDuration` and `Duration.String`)."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as `24h`, `1h30m` or `90s`; a bare number is seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return float(text)
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    terms = _TERM.findall(body)
    if not body or "".join(number + unit for number, unit in terms) != body:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * sum(float(number) * _UNITS[unit] for number, unit in terms)


def format_duration(seconds: float) -> str:
    """Go's `Duration.String` for whole seconds: `24h0m0s`, `5m0s`, `45s`, `0s`."""
    total = int(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
