"""istioctl's command-line flags: pflag's syntax (kubectl's parser) with istioctl's messages and
its root flags. `STRING_ARRAY` is pflag's StringArray (`--set a=b,c` keeps its comma)."""

from __future__ import annotations

from harness.istioctl.context import ISTIO_NAMESPACE
from harness.istioctl.errors import IstioctlError
from harness.kubectl import flags as kubectl_flags
from harness.kubectl.errors import KubectlError
from harness.kubectl.flags import BOOL, DURATION, INT, STRING, Flag, Parsed

STRING_ARRAY = "stringArray"

__all__ = ["BOOL", "DURATION", "GLOBAL_FLAGS", "INT", "STRING", "STRING_ARRAY", "Flag", "Parsed", "parse",
           "takes_value"]

GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("namespace", "n", STRING, ""),
    Flag("istioNamespace", "i", STRING, ISTIO_NAMESPACE),
    Flag("kubeconfig", "c", STRING, ""),
    Flag("context", kind=STRING, default=""),
    Flag("vklog", kind=INT, default=0),
    Flag("help", "h", BOOL),
)


class _Parser(kubectl_flags._Parser):
    """kubectl's pflag parser, reporting as istioctl does (no `See 'kubectl --help'` line)."""

    def usage_error(self, message: str) -> IstioctlError:
        return IstioctlError(message)

    def set(self, flag: Flag, value: str, shown: str) -> None:
        if flag.kind != STRING_ARRAY:
            super().set(flag, value, shown)
            return
        if flag.name not in self.result.given:
            self.result.flags[flag.name] = []
        self.result.flags[flag.name].append(value)
        self.result.given.add(flag.name)


def parse(argv: list[str], flags: tuple[Flag, ...]) -> Parsed:
    """Parse a command's arguments against its flags plus istioctl's root flags."""
    try:
        return _Parser(GLOBAL_FLAGS + flags, "").parse(argv)
    except KubectlError as exc:  # a value pflag cannot convert (kubectl's wording is pflag's)
        raise IstioctlError(exc.message) from exc


def takes_value(flags: tuple[Flag, ...]) -> set[str]:
    """The spellings of flags that consume the next argument (for finding subcommand names)."""
    spellings = {f"--{f.name}" for f in flags if f.kind != BOOL}
    return spellings | {f"-{f.short}" for f in flags if f.short and f.kind != BOOL}
