"""Command lines read the way kubectl (cobra/pflag) reads them."""

from __future__ import annotations

import pytest

from harness.kubectl import flags, resources
from harness.kubectl.errors import KubectlError
from harness.kubectl.flags import Flag

COMMAND = (
    Flag("output", "o", flags.STRING, ""),
    Flag("stdin", "i", flags.BOOL),
    Flag("tty", "t", flags.BOOL),
    Flag("filename", "f", flags.STRINGS),
    Flag("tail", kind=flags.INT, default=-1),
    Flag("timeout", kind=flags.DURATION, default=30.0),
    Flag("wait", kind=flags.BOOL, default=True),
)


def parse(*argv: str) -> flags.Parsed:
    return flags.parse(list(argv), COMMAND, "test")


def test_flag_forms() -> None:
    parsed = parse("-n", "ambient-demo", "pods", "-o=jsonpath={.items[0].metadata.name}", "--tail", "9",
                   "-f", "a.yaml,b.yaml", "--filename=c.yaml", "--timeout=1m30s", "--wait=false")
    assert parsed.args == ["pods"]
    assert parsed["namespace"] == "ambient-demo"
    assert parsed["output"] == "jsonpath={.items[0].metadata.name}"
    assert parsed["tail"] == 9
    assert parsed["filename"] == ["a.yaml", "b.yaml", "c.yaml"]
    assert parsed["timeout"] == 90.0
    assert parsed["wait"] is False
    assert {"namespace", "output", "tail", "filename", "timeout", "wait"} <= parsed.given


def test_short_flags_group_and_attach() -> None:
    parsed = parse("-it", "-nistio-system", "-ojson", "deploy/sleep")
    assert (parsed["stdin"], parsed["tty"], parsed["namespace"], parsed["output"]) == (True, True, "istio-system",
                                                                                     "json")
    assert parsed.dash is None and parsed.args == ["deploy/sleep"]


def test_double_dash_passes_the_rest_on() -> None:
    parsed = parse("deploy/sleep", "-n", "x", "--", "curl", "-s", "-o", "/dev/null", "--", "http://a")
    assert parsed.dash == ["curl", "-s", "-o", "/dev/null", "--", "http://a"]
    assert parsed.args[:1] == ["deploy/sleep"] and parsed["output"] == ""


def test_defaults_and_ignored_globals() -> None:
    parsed = parse("--context", "kind-ambient", "-v=6", "--kubeconfig=/x", "pods")
    assert parsed["namespace"] == "default" and parsed.args == ["pods"] and parsed["filename"] == []


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unknown flag: --bogus\nSee 'kubectl test --help' for usage."),
    (["-z"], "unknown shorthand flag: 'z' in -z\nSee 'kubectl test --help' for usage."),
    (["--tail"], "flag needs an argument: --tail\nSee 'kubectl test --help' for usage."),
    (["-n"], "flag needs an argument: 'n' in -n\nSee 'kubectl test --help' for usage."),
    (["--tail", "x"], 'invalid argument "x" for "--tail" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (["--timeout", "soon"], 'invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"'),
    (["--wait=maybe"], 'invalid argument "maybe" for "--wait" flag: strconv.ParseBool: parsing "maybe": invalid '
                       "syntax"),
])
def test_errors(argv: list[str], message: str) -> None:
    with pytest.raises(KubectlError) as caught:
        parse(*argv)
    assert caught.value.message == message


def test_durations() -> None:
    assert flags.parse_duration("0") == 0
    assert flags.parse_duration("500ms") == 0.5
    assert flags.parse_duration("1h2m3s") == 3723
    assert flags.parse_duration("-1s") == -1


def test_split_command_skips_global_flags() -> None:
    assert flags.split_command(["-n", "x", "get", "pods"]) == ("get", ["-n", "x", "pods"])
    assert flags.split_command(["--namespace=x", "-v", "6", "logs", "p"]) == ("logs", ["--namespace=x", "-v", "6", "p"])
    assert flags.split_command(["--help"]) == (None, ["--help"])


def test_resource_arguments() -> None:
    single = resources.select(["deploy", "sleep"])
    assert [(k.kind, n) for k, n in single.requests] == [("Deployment", ["sleep"])] and single.single
    several = resources.select(["po,svc"])
    assert [k.kind for k, _ in several.requests] == ["Pod", "Service"] and several.several_kinds
    by_slash = resources.select(["deployment.apps/sleep", "svc/sleep", "deploy/httpbin"])
    assert [(k.kind, n) for k, n in by_slash.requests] == [("Deployment", ["sleep", "httpbin"]), ("Service", ["sleep"])]
    everything = resources.select(["all"])
    assert [k.plural for k, _ in everything.requests] == ["pods", "services", "daemonsets", "deployments",
                                                          "replicasets"]
    with pytest.raises(KubectlError, match='doesn\'t have a resource type "widgets"'):
        resources.select(["widgets"])
