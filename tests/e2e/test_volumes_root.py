"""The mount script run for real in a private mount namespace: a volume whose mount point's
top-level directory does not exist on the host (seed 001's reviews mount /opt/ibm/wlp/output,
and a host may have no /opt) is mounted, everything else stays usable, the host is not written."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from harness import volumes
from harness.pytest_plugin import require_root


def run_in_pod_namespace(script: list[str], then: str) -> subprocess.CompletedProcess[str]:
    body = "set -e\n" + "\n".join(script) + "\n" + then
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", body],
                          capture_output=True, text=True, timeout=60)


def test_mount_point_under_a_missing_top_level_directory(tmp_path: Path):
    require_root()
    top = f"/emulator-test-{uuid.uuid4().hex[:8]}"
    volume, secret = tmp_path / "volume", tmp_path / "secret"
    volume.mkdir()
    secret.mkdir()
    (secret / "token").write_text("abc")
    mounts = [volumes.Mount(volume, f"{top}/wlp/output", False),
              volumes.Mount(secret, "/etc/emulator-test-missing/tls", True)]
    script = volumes.mount_script(mounts, tmp_path / "overlays")
    result = run_in_pod_namespace(script, f"""
echo written > {top}/wlp/output/file
cat /etc/emulator-test-missing/tls/token; echo
test ! -e /.pod-old-root && echo no-old-root
head -c 4 /proc/self/status; echo
test -c /dev/null && echo dev-null
{sys.executable} -c 'print("python runs")'
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["abc", "no-old-root", "Name", "dev-null", "python runs"]
    assert (volume / "file").read_text() == "written\n"
    assert not Path(top).exists()
    assert not Path("/etc/emulator-test-missing").exists()
