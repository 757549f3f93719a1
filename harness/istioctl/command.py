"""istioctl's command tree, cobra style: a command has a name, aliases, flags, and either a
handler or subcommands; help is rendered in cobra's layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from harness.istioctl import flags
from harness.istioctl.context import IstioctlContext

Handler = Callable[[flags.Parsed, IstioctlContext], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    name: str
    short: str
    run: Handler | None = None
    flags: tuple[flags.Flag, ...] = ()
    aliases: tuple[str, ...] = ()
    children: tuple["Command", ...] = ()
    long: str = ""
    args: str = ""  # what follows the name in the usage line, e.g. "[<type>/]<name>[.<namespace>]"

    def matches(self, word: str) -> bool:
        return word == self.name or word in self.aliases

    def child(self, word: str) -> "Command | None":
        return next((c for c in self.children if c.matches(word)), None)


def _flag_line(flag: flags.Flag) -> str:
    short = f"-{flag.short}, " if flag.short else "    "
    kind = "" if flag.kind == flags.BOOL else f" {flag.kind}"
    return f"  {short}--{flag.name}{kind}"


def help_text(path: list[Command]) -> str:
    """cobra's help for the command at the end of `path` (root first)."""
    command = path[-1]
    command_path = " ".join(c.name for c in path)
    parts = [(command.long or command.short) + "\n", "Usage:\n"]
    if command.run is not None:
        parts[-1] += f"  {command_path}{' ' + command.args if command.args else ''} [flags]\n"
    if command.children:
        parts[-1] += f"  {command_path} [command]\n"
    if command.aliases:
        parts.append("Aliases:\n  " + ", ".join((command.name, *command.aliases)) + "\n")
    if command.children:
        width = max(len(c.name) for c in command.children) + 1
        parts.append("Available Commands:\n" + "".join(f"  {c.name.ljust(width)} {c.short}\n"
                                                        for c in command.children))
    own = command.flags + (flags.GLOBAL_FLAGS if len(path) == 1 else ())
    parts.append("Flags:\n" + "".join(_flag_line(f) + "\n" for f in own if f.name != "help")
                 + f"  -h, --help   help for {command.name}\n")
    if len(path) > 1:
        parts.append("Global Flags:\n" + "".join(_flag_line(f) + "\n" for f in flags.GLOBAL_FLAGS
                                                 if f.name != "help"))
    text = "\n".join(parts)
    if command.children:
        text += f'\nUse "{command_path} [command] --help" for more information about a command.\n'
    return text
