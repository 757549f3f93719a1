"""klog's structured messages: `"Syncing iptables rules" numServices=3 IPs=["172.18.0.3"]`."""

from __future__ import annotations

import json
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json.dumps(str(item)) for item in value) + "]"
    return json.dumps(str(value))


def kv(message: str, **fields: Any) -> str:
    return " ".join([json.dumps(message)] + [f"{key}={_value(value)}" for key, value in fields.items()])


def duration(seconds: float) -> str:
    """A Go time.Duration's String() for sub-minute values: `4.851958ms`, `1.2s`."""
    if seconds >= 1:
        return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    return f"{seconds * 1000:.6f}".rstrip("0").rstrip(".") + "ms"
