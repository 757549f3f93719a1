"""Timestamps and kubectl's human durations (the AGE column)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?$")


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp (any number of fractional digits), or None when absent or invalid."""
    if not text:
        return None
    match = _RFC3339.match(text)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z", "z") else zone
    return datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}")


def now() -> datetime:
    return datetime.now(timezone.utc)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery's duration.HumanDuration."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 60 * 2:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(text: str | None, at: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` without one."""
    stamp = parse_time(text)
    if stamp is None:
        return "<unknown>"
    return human_duration((at - stamp).total_seconds())


def rfc1123(text: str | None) -> str:
    """The layout `kubectl describe` prints times in: `Sun, 17 Mar 2024 12:07:08 +0000`."""
    stamp = parse_time(text)
    if stamp is None:
        return "<unknown>"
    return stamp.strftime("%a, %d %b %Y %H:%M:%S %z")


def rfc3339(at: datetime) -> str:
    """Go's time.RFC3339 layout, `Z` for UTC."""
    text = at.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text
