"""Throwaway network namespaces for ztunnel's root-only tests: pods as `unshare -n` processes,
joined by a veth pair, with istio-cni's in-pod redirection rules (seed 002) inside.

Nothing touches the host's namespace: links, addresses, routes and rules are made inside the
namespaces, which die with their holder processes (ended by pid).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

INPOD_RULES = """*mangle
:ISTIO_OUTPUT - [0:0]
:ISTIO_PRERT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -i lo -p tcp -j ACCEPT
-A ISTIO_PRERT -p tcp -m tcp --dport 15008 -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15008 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff
-A ISTIO_PRERT -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff
COMMIT
*nat
:ISTIO_OUTPUT - [0:0]
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -m tcp -j ACCEPT
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
COMMIT
"""


def missing_tools() -> str | None:
    """Why the root tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (creates network namespaces with unshare -n)"
    for tool in ("unshare", "nsenter", "ip", "ss"):
        if shutil.which(tool) is None:
            return f"needs root tools: {tool} not found"
    if restore_command() is None:
        return "needs iptables-restore"
    return None


def restore_command() -> str | None:
    return shutil.which("iptables-legacy-restore") or shutil.which("iptables-restore")


@dataclass
class Namespace:
    """A network namespace held by a `sleep` in it; `fd` is open on it."""

    process: subprocess.Popen
    fd: int

    @classmethod
    def create(cls) -> "Namespace":
        process = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        path = f"/proc/{process.pid}/ns/net"
        own = os.stat("/proc/self/ns/net").st_ino
        for _ in range(200):  # until unshare has exec'd sleep in the new namespace
            try:
                if os.stat(path).st_ino != own:
                    break
            except FileNotFoundError:
                pass
            subprocess.run(["sleep", "0.01"])
        namespace = cls(process, os.open(path, os.O_RDONLY))
        namespace.run("ip", "link", "set", "lo", "up")
        return namespace

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, *argv: str, input: str | None = None) -> str:
        result = subprocess.run(["nsenter", "-t", str(self.pid), "-n", *argv], input=input, text=True,
                                capture_output=True, check=True)
        return result.stdout

    def install_inpod_rules(self) -> None:
        command = restore_command()
        assert command is not None
        self.run(command, input=INPOD_RULES)
        self.run("ip", "rule", "add", "fwmark", "0x111/0xfff", "pref", "32764", "lookup", "100")
        self.run("ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

    def close(self) -> None:
        os.close(self.fd)
        self.process.kill()
        self.process.wait()


def link(a: Namespace, a_ip: str, b: Namespace, b_ip: str) -> None:
    """A veth pair between two namespaces, /24 addresses, default routes over it."""
    a.run("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", str(b.pid))
    for ns, dev, ip in ((a, "veth0", a_ip), (b, "veth1", b_ip)):
        ns.run("ip", "addr", "add", f"{ip}/24", "dev", dev)
        ns.run("ip", "link", "set", dev, "up")
        ns.run("ip", "route", "add", "default", "dev", dev)
