"""Socket addresses as the proxies print them."""

from __future__ import annotations

Address = tuple[str, int]


def format_address(address: Address) -> str:
    """`ip:port`, IPv6 in brackets, as Rust's SocketAddr displays."""
    ip, port = address
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
