"""Command-line flags the way kubectl (cobra/pflag) reads them.

Flags may appear anywhere among the arguments: `--name=value`, `--name value`, `-n value`,
`-nvalue`, `-n=value`, grouped booleans (`-it`), and `--` ends the flags (what follows is passed
on, as for `kubectl exec POD -- CMD`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.kubectl.errors import KubectlError

BOOL, STRING, INT, STRINGS, DURATION = "bool", "string", "int", "strings", "duration"


@dataclass(frozen=True)
class Flag:
    name: str
    short: str = ""
    kind: str = BOOL
    default: Any = None

    def initial(self) -> Any:
        if self.kind == STRINGS:
            return list(self.default or [])
        if self.default is None and self.kind == BOOL:
            return False
        return self.default


@dataclass
class Parsed:
    args: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    dash: list[str] | None = None  # the arguments after `--`, None without `--`

    def __getitem__(self, name: str) -> Any:
        return self.flags[name]

    @property
    def before_dash(self) -> list[str]:
        """The positional arguments before `--`."""
        return self.args[:len(self.args) - len(self.dash)] if self.dash is not None else self.args


GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("namespace", "n", STRING, "default"),
    Flag("context", kind=STRING, default=""),
    Flag("kubeconfig", kind=STRING, default=""),
    Flag("cluster", kind=STRING, default=""),
    Flag("user", kind=STRING, default=""),
    Flag("request-timeout", kind=STRING, default="0"),
    Flag("v", "v", STRING, "0"),
    Flag("help", "h", BOOL),
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds ("30s", "1m30s", "0")."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


def _convert(flag: Flag, value: str, shown: str) -> Any:
    try:
        if flag.kind == INT:
            if not re.fullmatch(r"[+-]?\d+", value):
                raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
            return int(value)
        if flag.kind == DURATION:
            return parse_duration(value)
        if flag.kind == BOOL:
            lowered = value.lower()
            if lowered in ("1", "t", "true"):
                return True
            if lowered in ("0", "f", "false"):
                return False
            raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
    except ValueError as exc:
        raise KubectlError(f'invalid argument "{value}" for "{shown}" flag: {exc}') from exc
    return value


class _Parser:
    def __init__(self, flags: tuple[Flag, ...] | list[Flag], command: str):
        self.by_name = {f.name: f for f in flags}
        self.by_short = {f.short: f for f in flags if f.short}
        self.command = command
        self.result = Parsed(flags={f.name: f.initial() for f in flags})

    def usage_error(self, message: str) -> KubectlError:
        where = f"kubectl {self.command}" if self.command else "kubectl"
        return KubectlError(f"{message}\nSee '{where} --help' for usage.")

    def set(self, flag: Flag, value: str, shown: str) -> None:
        converted = _convert(flag, value, shown)
        if flag.kind == STRINGS:
            if flag.name not in self.result.given:
                self.result.flags[flag.name] = []
            self.result.flags[flag.name].extend(v for v in value.split(",") if v)
        else:
            self.result.flags[flag.name] = converted
        self.result.given.add(flag.name)

    def long(self, arg: str, rest: list[str]) -> None:
        name, has_value, value = arg[2:].partition("=")
        flag = self.by_name.get(name)
        if flag is None:
            raise self.usage_error(f"unknown flag: --{name}")
        if flag.kind == BOOL:
            self.set(flag, value if has_value else "true", f"--{name}")
        elif has_value:
            self.set(flag, value, f"--{name}")
        elif rest:
            self.set(flag, rest.pop(0), f"--{name}")
        else:
            raise self.usage_error(f"flag needs an argument: --{name}")

    def short(self, arg: str, rest: list[str]) -> None:
        chars = arg[1:]
        while chars:
            letter, chars = chars[0], chars[1:]
            flag = self.by_short.get(letter)
            if flag is None:
                raise self.usage_error(f"unknown shorthand flag: '{letter}' in {arg}")
            if flag.kind == BOOL:
                if chars.startswith("="):
                    self.set(flag, chars[1:], f"-{letter}")
                    return
                self.set(flag, "true", f"-{letter}")
                continue
            if chars:
                self.set(flag, chars[1:] if chars.startswith("=") else chars, f"-{letter}")
            elif rest:
                self.set(flag, rest.pop(0), f"-{letter}")
            else:
                raise self.usage_error(f"flag needs an argument: '{letter}' in {arg}")
            return

    def parse(self, argv: list[str]) -> Parsed:
        rest = list(argv)
        while rest:
            arg = rest.pop(0)
            if arg == "--":
                self.result.dash = rest
                self.result.args.extend(rest)
                return self.result
            if arg.startswith("--"):
                self.long(arg, rest)
            elif arg.startswith("-") and arg != "-":
                self.short(arg, rest)
            else:
                self.result.args.append(arg)
        return self.result


def parse(argv: list[str], flags: tuple[Flag, ...] | list[Flag], command: str = "") -> Parsed:
    """Parse `argv` against the command's flags plus kubectl's global flags."""
    return _Parser(tuple(GLOBAL_FLAGS) + tuple(flags), command).parse(argv)


def split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command name (the first argument that is not a global flag or its value) and the
    arguments without it, as cobra finds the subcommand."""
    takes_value = {f"--{f.name}" for f in GLOBAL_FLAGS if f.kind != BOOL}
    takes_value |= {f"-{f.short}" for f in GLOBAL_FLAGS if f.short and f.kind != BOOL}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return None, argv
        if arg.startswith("-") and arg != "-":
            i += 2 if arg in takes_value else 1
            continue
        return arg, argv[:i] + argv[i + 1:]
    return None, argv
