"""`ambient run SCRIPT`: a bash script of commands run unattended against a cluster, checked by
the expectations written as comments after each command.

The script is split into steps at blank lines (a blank line inside a heredoc does not split).
Each step runs with `bash -c`, the cluster's `kubectl` and `istioctl` first on PATH; shell
variables do not carry over from one step to the next. Comment lines of a step:

    # expect: exit N                       the step's exit code (default: 0)
    # expect: contains TEXT                TEXT is in the output (stdout and stderr)
    # expect: not contains TEXT            TEXT is not in the output
    # expect: matches REGEX                REGEX (Python, multi-line) matches the output
    # expect-log COMPONENT NODE: TEXT      within a few seconds, TEXT is in the log of the pod
                                           named COMPONENT-... (ztunnel, istio-cni, istiod or any
                                           pod name prefix) on node NODE
    # expect-no-log COMPONENT NODE: TEXT   TEXT is not in that log (checked once the step is done)
    # retry: SECONDS                       run the step again until its expectations hold, for up
                                           to SECONDS (a policy or label takes a moment to reach
                                           every ztunnel); the last attempt is the one shown

Other comment lines narrate the step. A comment `# topology: FILE` before the first step names the
topology the script is written for (relative to the script): without --topology or --cluster (or
$AMBIENT_CLUSTER), `ambient run` brings it up and tears it down after.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from components.common.apiclient import ApiClient
from harness.cluster import Cluster, ClusterError
from harness.steps import Display, run_bash

LOG_WAIT = 5.0
TAIL_LINES = 12
_EXPECT = re.compile(r"^#\s*expect:\s*(exit|contains|not contains|matches)\s+(.*?)\s*$")
_EXPECT_LOG = re.compile(r"^#\s*expect-(log|no-log)\s+(\S+)\s+(\S+?):\s*(.*?)\s*$")
_RETRY = re.compile(r"^#\s*retry:\s*(\S+?)s?\s*$")
_TOPOLOGY = re.compile(r"^#\s*topology:\s*(\S+)\s*$")
RETRY_INTERVAL = 0.2
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


class ScriptError(Exception):
    """A script that cannot be run as written; the message names the line."""


@dataclass(frozen=True)
class Expectation:
    kind: str          # exit | contains | not contains | matches | log | no-log
    value: str
    component: str = ""
    node: str = ""

    def describe(self) -> str:
        if self.kind in ("log", "no-log"):
            verb = "contains" if self.kind == "log" else "does not contain"
            return f"{self.component} log on {self.node} {verb} {self.value!r}"
        return f"{self.kind} {self.value!r}" if self.kind != "exit" else f"exit {self.value}"


@dataclass
class ScriptStep:
    line: int                      # where the step starts in the script (1-based)
    command: str
    narration: list[str] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    retry: float = 0.0             # seconds to keep re-running the step until its expectations hold

    @property
    def exit_code(self) -> int:
        codes = [int(e.value) for e in self.expectations if e.kind == "exit"]
        return codes[-1] if codes else 0


def _expectation(text: str, line: int) -> Expectation | None:
    """The expectation a comment line states, None for a plain comment."""
    if m := _EXPECT.match(text):
        kind, value = m.groups()
        if kind == "exit" and not value.isdigit():
            raise ScriptError(f"line {line}: `# expect: exit` needs a number, got {value!r}")
        if kind == "matches":
            try:
                re.compile(value)
            except re.error as exc:
                raise ScriptError(f"line {line}: bad regular expression {value!r}: {exc}") from exc
        return Expectation(kind, value)
    if m := _EXPECT_LOG.match(text):
        kind, component, node, value = m.groups()
        return Expectation(kind, value, component, node)
    if re.match(r"^#\s*expect", text):
        raise ScriptError(f"line {line}: not an expectation: {text!r} (see `ambient run --help`)")
    return None


def parse(text: str) -> list[ScriptStep]:
    """The steps of a script: blocks of lines between blank lines, heredoc bodies kept whole."""
    steps: list[ScriptStep] = []
    block: list[tuple[int, str, bool]] = []   # (line number, text, inside a heredoc body)
    heredocs: list[tuple[bool, str]] = []     # pending (strip tabs, delimiter), in order

    def close() -> None:
        if not block:
            return
        step = ScriptStep(line=block[0][0], command="")
        commands: list[str] = []
        for number, raw, in_body in block:
            stripped = raw.strip()
            if not in_body and _TOPOLOGY.match(stripped):
                continue
            if not in_body and (m := _RETRY.match(stripped)):
                try:
                    step.retry = float(m.group(1))
                except ValueError:
                    raise ScriptError(f"line {number}: `# retry:` needs a number of seconds, got {m.group(1)!r}") \
                        from None
                continue
            if not in_body and stripped.startswith("#"):
                expectation = None if stripped.startswith("#!") else _expectation(stripped, number)
                if expectation is not None:
                    step.expectations.append(expectation)
                elif not commands and not stripped.startswith("#!"):
                    step.narration.append(stripped.lstrip("#").strip())
                continue
            commands.append(raw)
        step.command = "\n".join(commands)
        if step.command.strip():
            steps.append(step)
        elif step.expectations:
            raise ScriptError(f"line {step.line}: expectations without a command")
        block.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        if heredocs:
            strip, delimiter = heredocs[0]
            if (raw.lstrip("\t") if strip else raw) == delimiter:
                heredocs.pop(0)
            block.append((number, raw, True))
            continue
        if not raw.strip():
            close()
            continue
        block.append((number, raw, False))
        if not raw.lstrip().startswith("#"):
            heredocs.extend((m.group(1) == "-", m.group(3)) for m in _HEREDOC.finditer(raw))
    if heredocs:
        raise ScriptError(f"the script ends inside a heredoc (no line {heredocs[0][1]!r})")
    close()
    return steps


def script_topology(text: str, script: Path) -> Path | None:
    """The topology a `# topology: FILE` comment before the first command names (relative to the script)."""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            return None
        if m := _TOPOLOGY.match(stripped):
            return (script.parent / m.group(1)).resolve()
    return None


def tail(output: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(output.rstrip("\n").splitlines()[-lines:])


def check_output(expectation: Expectation, code: int, output: str) -> str | None:
    """None when the expectation holds for this exit code and output, else what was wrong."""
    if expectation.kind == "exit":
        return None if code == int(expectation.value) else f"exit code {code}, expected {expectation.value}"
    if expectation.kind == "contains":
        return None if expectation.value in output else f"expected {expectation.value!r} in the output"
    if expectation.kind == "not contains":
        return None if expectation.value not in output else f"did not expect {expectation.value!r} in the output"
    if expectation.kind == "matches":
        return None if re.search(expectation.value, output, re.M) else \
            f"expected output matching {expectation.value!r}"
    raise ValueError(expectation.kind)


async def _log_paths(cluster: Cluster, component: str, node: str) -> list[Path]:
    pods = (await ApiClient(cluster.run.apiserver_address).list("v1", "Pod"))["items"]
    return [cluster.run.container_log(pod, container["name"])
            for pod in pods if _is_component(pod, component) and pod["spec"].get("nodeName") == node
            for container in pod["spec"]["containers"]]


def _is_component(pod: dict[str, Any], component: str) -> bool:
    name = pod["metadata"]["name"]
    return name == component or name.startswith(component + "-")


async def check_no_log(cluster: Cluster, expectation: Expectation) -> str | None:
    """None when the unwanted text is in no log of the component on the node, else the lines showing it."""
    paths = await _log_paths(cluster, expectation.component, expectation.node)
    if not paths:
        return f"no pod {expectation.component}-... on node {expectation.node}"
    seen = [line for p in paths if p.exists() for line in p.read_text(errors="replace").splitlines()
            if expectation.value in line]
    if not seen:
        return None
    return f"did not expect {expectation.value!r} in the {expectation.component} log on {expectation.node}" \
           f" (it is there)\n{_indent(tail(chr(10).join(seen)))}"


async def check_log(cluster: Cluster, expectation: Expectation, wait: float = LOG_WAIT) -> str | None:
    """Wait up to `wait` seconds for the expected line in the component's log on the node."""
    paths: list[Path] = []
    seen = ""
    with trio.move_on_after(wait):
        while True:
            paths = await _log_paths(cluster, expectation.component, expectation.node)
            seen = "".join(p.read_text(errors="replace") for p in paths if p.exists())
            if expectation.value in seen:
                return None
            await trio.sleep(0.1)
    if not paths:
        return f"no pod {expectation.component}-... on node {expectation.node}"
    return f"{expectation.value!r} not in the {expectation.component} log on {expectation.node} after {wait:.0f}s" \
           f" (its last lines below)\n{_indent(tail(seen))}"


async def run_step(cluster: Cluster, step: ScriptStep, display: Display, timeout: float) -> tuple[list[str], float]:
    """Run one step and check it (again and again for up to `step.retry` seconds while it fails):
    the failures of the last attempt (empty when it passed) and how long it all took."""
    for line in step.narration:
        display.say(line)
    display.command(step.command)
    checks = [Expectation("exit", str(step.exit_code))] + [e for e in step.expectations if e.kind != "exit"]
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        code, output, _ = await run_bash(cluster.run.bin, step.command, timeout)
        retrying = time.monotonic() - started < step.retry
        failures = [why for e in checks if e.kind not in ("log", "no-log")
                    if (why := check_output(e, code, output)) is not None]
        if not failures:
            failures = [why for e in checks if e.kind in ("log", "no-log")
                        if (why := await _check_log(cluster, e, retrying)) is not None]
        if not failures or not retrying:
            break
        await trio.sleep(RETRY_INTERVAL)
    elapsed = time.monotonic() - started
    display.output(output)
    if attempts > 1:
        display.progress(f"attempt {attempts} after {elapsed:.1f}s (# retry: {step.retry:g})")
    shown = "; ".join(failures) + f"\n     the output ended with:\n{_indent(tail(output))}" if failures else None
    display.result(not failures, shown)
    return failures, elapsed


async def _check_log(cluster: Cluster, expectation: Expectation, retrying: bool) -> str | None:
    if expectation.kind == "no-log":
        return await check_no_log(cluster, expectation)
    return await check_log(cluster, expectation, wait=RETRY_INTERVAL if retrying else LOG_WAIT)


def _indent(text: str) -> str:
    return "\n".join("       | " + line for line in text.splitlines()) if text else "       | (no output)"


async def run_script(script: Path, *, topology: Path | None, name: str | None, cluster_name: str | None,
                     timeout: float, display: Display | None = None) -> int:
    """Run the script against a cluster (brought up from `topology` and torn down after, or the
    running one); print the summary table and return the exit code (0 when every step passed)."""
    display = display or Display()
    try:
        text = script.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read {script}: {exc}") from exc
    steps = parse(text)
    if topology is None and cluster_name is None and not os.environ.get("AMBIENT_CLUSTER"):
        topology = script_topology(text, script)
        if topology is not None and not topology.is_file():
            raise ScriptError(f"{script}: its `# topology:` {topology} does not exist")
    rows = [("STEP", "RESULT", "TIME")]
    started = time.monotonic()
    if topology is not None:
        cluster = Cluster.from_file(topology, name=name, progress=display.progress)
        display.say(f"Bringing up {topology} as cluster {cluster.name}")
    else:
        cluster = Cluster.attach(cluster_name)
        display.say(f"Running {script} on cluster {cluster.name}")
    try:
        async with cluster:
            if topology is not None:
                rows.append(("bring-up", "PASS", f"{time.monotonic() - started:.2f}s"))
            for step in steps:
                failures, elapsed = await run_step(cluster, step, display, timeout)
                first = step.command.splitlines()[0]
                label = f"{step.line}: " + (first if len(first) < 70 else first[:67] + "...")
                rows.append((label, "PASS" if not failures else "FAIL: " + failures[0].splitlines()[0],
                             f"{elapsed:.2f}s"))
            if topology is not None:
                display.say(f"Tearing cluster {cluster.name} down")
    except ClusterError as exc:
        rows.append(("bring-up", f"FAIL: {exc}", f"{time.monotonic() - started:.2f}s"))
    display.table(rows)
    failed = [r for r in rows[1:] if r[1] != "PASS"]
    print(f"\n{len(rows) - 1 - len(failed)} passed, {len(failed)} failed", file=display.stream, flush=True)
    return 1 if failed else 0
