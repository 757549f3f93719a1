"""istioctl 1.24, emulated: `install`, `x precheck`, `version` and `ztunnel-config`, printing what
istioctl prints.

`run(argv, ctx)` runs one command line against the cluster's apiserver; the harness supplies the
streams (and, for tests, another manifests directory) in an `IstioctlContext`.
"""

from harness.istioctl.cli import run
from harness.istioctl.context import IstioctlContext

__all__ = ["IstioctlContext", "run"]
