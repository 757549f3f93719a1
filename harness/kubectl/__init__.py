"""kubectl, emulated: the commands of blog posts and bug reports, printing what kubectl prints.

`run(argv, ctx)` runs one command line against the cluster's apiserver; the harness supplies
the streams and the hooks for `exec` and `logs` in a `KubectlContext`.
"""

from harness.kubectl.cli import run
from harness.kubectl.context import KubectlContext

__all__ = ["KubectlContext", "run"]
