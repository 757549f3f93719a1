"""The node side of probe handling: the `istio-inpod-probes-v4` ipset and the ISTIO_POSTRT SNAT.

The kubelet probes pods from the node. Connections from the node (`-m owner --socket-exists`,
i.e. locally originated) to an enrolled pod's IP leave with source 169.254.7.127, which the
in-pod rules accept without redirecting to ztunnel, so probes keep working under STRICT mTLS.

Each ipset entry carries the pod UID as its comment: an entry is removed only by the pod that
owns it, so a late removal for a deleted pod cannot take out a new pod that reuses the IP
(istio/istio#52218, #51081). Blocking: call from a worker thread, one call at a time.
"""

from __future__ import annotations

import shlex
import subprocess

from components.cni import iptables
from components.cni.rules import HOST_PROBE_SNAT_IP, PROBE_IPSET, Verdict, host_ruleset


class IPSetError(Exception):
    pass


class HostProbe:
    def __init__(self, netns: str | None = None, ipset: str = PROBE_IPSET, snat_ip: str = HOST_PROBE_SNAT_IP):
        """`netns`: a path to the node netns, or None for the netns this process runs in."""
        self.netns = netns
        self.ipset = ipset
        self.ruleset = host_ruleset(snat_ip, ipset)

    def _run(self, *args: str) -> str:
        argv = (["nsenter", f"--net={self.netns}"] if self.netns else []) + ["ipset", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise IPSetError(result.stderr.strip() or f"{shlex.join(argv)} exited with {result.returncode}")
        return result.stdout

    def ensure_rules(self) -> Verdict:
        """Create the ipset and make ISTIO_POSTRT exactly one jump and one rule (no duplicates)."""
        self._run("create", self.ipset, "hash:ip", "comment", "-exist")
        return iptables.ensure(self.ruleset, self.netns)

    def check_rules(self) -> Verdict:
        return iptables.check(self.ruleset, self.netns)

    def entries(self) -> dict[str, str]:
        """IP -> owning pod UID (the entry's comment)."""
        out: dict[str, str] = {}
        for line in self._run("save", self.ipset).splitlines():
            words = shlex.split(line)
            if len(words) >= 3 and words[0] == "add":
                comment = words[words.index("comment") + 1] if "comment" in words[3:] else ""
                out[words[2]] = comment
        return out

    def add(self, ip: str, uid: str) -> None:
        """Add `ip` for pod `uid`, taking the entry over if another pod had it."""
        self._run("add", self.ipset, ip, "comment", uid, "-exist")

    def remove(self, ip: str, uid: str) -> bool:
        """Remove `ip` if pod `uid` owns the entry; returns whether it did."""
        if self.entries().get(ip) != uid:
            return False
        self._run("del", self.ipset, ip, "-exist")
        return True

    def sync(self, wanted: dict[str, str]) -> None:
        """Make the set hold exactly `wanted` (IP -> UID)."""
        current = self.entries()
        for ip in current.keys() - wanted.keys():
            self._run("del", self.ipset, ip, "-exist")
        for ip, uid in wanted.items():
            if current.get(ip) != uid:
                self.add(ip, uid)
