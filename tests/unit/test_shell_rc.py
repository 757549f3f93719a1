"""`ambient shell`'s rc file: shortcuts for workloads and nodes, valid bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.shell import rc_text, shortcut_names


def pod(name: str, owner: str | None = None) -> dict:
    meta: dict = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    return {"metadata": meta}


def test_shortcuts_are_workload_names_and_nodes_but_never_the_shells_own_words() -> None:
    pods = [pod("sleep-57cb6c8c94-t58h6", "ReplicaSet"), pod("httpbin-48dfdd547f-gmn4t", "Deployment"),
            pod("ztunnel-59c7g", "DaemonSet"),
            pod("ztunnel-lkvj6", "DaemonSet"), pod("standalone"), pod("logs"), pod("9bad")]
    assert shortcut_names(pods, ["ambient-worker", "time"]) == ["ambient-worker", "httpbin", "sleep", "standalone",
                                                            "ztunnel"]


def test_the_rc_file_is_valid_bash_with_the_prompt_and_shortcuts(tmp_path: Path) -> None:
    text = rc_text("demo", tmp_path / "bin", tmp_path / "history", ["sleep", "ambient-worker"])
    assert "PS1='(ambient:demo) $ '" in text
    assert 'sleep() { ambient exec sleep -- "$@"; }' in text
    assert 'pcap() { ambient pcap "$@"; }' in text
    rc = tmp_path / "rc"
    rc.write_text(text)
    subprocess.run(["bash", "-n", str(rc)], check=True)
    shown = subprocess.run(["bash", "-c", f". {rc}; type -t sleep pods logs pcap graph ambient-worker; echo $PATH"],
                           capture_output=True, text=True, check=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert shown.stdout.split() == ["function"] * 6 + [f"{tmp_path / 'bin'}:/usr/bin:/bin"]
