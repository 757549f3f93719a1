"""The istioctl command line: finding the (sub)command as cobra does, parsing its flags, running
it, and turning errors into istioctl's messages and exit codes."""

from __future__ import annotations

from components.common.apiclient import ApiError
from harness.istioctl import flags, install, precheck, proxy_config, version, waypoint, ztunnel_config
from harness.istioctl.command import Command, help_text
from harness.istioctl.context import IstioctlContext, emit
from harness.istioctl.errors import EXIT_INCORRECT_USAGE, IstioctlError, report
from harness.kubectl.cli import _distance

EXPERIMENTAL = Command(
    "experimental", "Experimental commands that may be modified or deprecated", aliases=("x", "exp"),
    children=(Command("precheck", "Check whether Istio can safely be installed or upgraded", precheck.run,
                      precheck.FLAGS,
                      long="precheck inspects a Kubernetes cluster for Istio install and upgrade requirements."),))

ROOT = Command(
    "istioctl", "Istio control interface.",
    long="Istio configuration command line utility for service operators to\ndebug and diagnose their Istio mesh.\n",
    children=(
        EXPERIMENTAL,
        Command("install", "Applies an Istio manifest, installing or reconfiguring Istio on a cluster.", install.run,
                install.FLAGS, ("apply",),
                long="The install command generates an Istio install manifest and applies it to a cluster."),
        Command("version", "Prints out build version information", version.run, version.FLAGS),
        proxy_config.COMMAND,
        waypoint.COMMAND,
        ztunnel_config.COMMAND,
    ))

# istioctl 1.24's other top-level commands: real names, not emulated (yet).
NOT_EMULATED = {"admin": (), "analyze": (), "bug-report": (), "completion": (), "create-remote-secret": (),
                "dashboard": ("dash", "d"), "kube-inject": (), "manifest": (), "proxy-status": ("ps",),
                "remote-clusters": (), "tag": (), "uninstall": (), "upgrade": (), "validate": ("v",)}


def _is_flag(arg: str) -> bool:
    return arg.startswith("-") and arg != "-"


def _first_word(args: list[str], command: Command) -> int | None:
    """The index of the first argument that is not a flag or a flag's value (None before `--`)."""
    valued = flags.takes_value(flags.GLOBAL_FLAGS + command.flags)
    i = 0
    while i < len(args) and _is_flag(args[i]) and args[i] != "--":
        i += 2 if args[i] in valued else 1
    return i if i < len(args) and args[i] != "--" else None


def find(argv: list[str]) -> tuple[list[Command], list[str]]:
    """The command path named by the leading words of `argv` and the remaining arguments (flags
    may come before subcommand names)."""
    path, rest = [ROOT], list(argv)
    while path[-1].children:
        i = _first_word(rest, path[-1])
        child = None if i is None else path[-1].child(rest[i])
        if i is None or child is None:
            break
        path.append(child)
        rest = rest[:i] + rest[i + 1:]
    return path, rest


def _unknown_command(word: str) -> IstioctlError:
    """cobra's error, with its suggestions (edit distance up to 2, or a prefix)."""
    names = sorted([c.name for c in ROOT.children] + list(NOT_EMULATED) + ["help"])
    close = [n for n in names if _distance(word.lower(), n) <= 2 or n.startswith(word.lower())]
    text = f'unknown command "{word}" for "istioctl"'
    if close:
        text += "\n\nDid you mean this?\n" + "".join(f"\t{n}\n" for n in close)
    return IstioctlError(text, EXIT_INCORRECT_USAGE, "Run 'istioctl --help' for usage.\n")


def _not_emulated(word: str) -> str | None:
    return next((name for name, aliases in NOT_EMULATED.items() if word == name or word in aliases), None)


async def _dispatch(argv: list[str], ctx: IstioctlContext) -> int:
    path, rest = find(argv)
    command = path[-1]
    first = _first_word(rest, command)
    if command is ROOT and first is not None:
        word = rest[first]
        if word == "help":
            target, _ = find(rest[first + 1:])
            emit(ctx.stdout, help_text(target))
            return 0
        missing = _not_emulated(word)
        if missing is not None:
            raise IstioctlError(f'"istioctl {missing}" is not emulated yet')
        raise _unknown_command(word)
    parsed = flags.parse(rest, command.flags)
    if parsed["help"] or command.run is None:
        emit(ctx.stdout, help_text(path))
        return 0
    return await command.run(parsed, ctx)


async def run(argv: list[str], ctx: IstioctlContext) -> int:
    """Run one istioctl command line (without the leading "istioctl"); returns its exit code."""
    try:
        return await _dispatch(argv, ctx)
    except (IstioctlError, ApiError) as exc:
        return report(exc, ctx.stderr)
