"""`ambient run` scripts: steps at blank lines, heredocs kept whole, expectations from comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner import Expectation, ScriptError, check_output, parse, script_topology


def test_steps_split_at_blank_lines_with_their_expectations_and_narration() -> None:
    steps = parse("#!/bin/bash\n# The pods.\nkubectl get pods -A\n# expect: contains Running\n\n\n"
                  "kubectl exec deploy/notsleep -- curl -s httpbin:8000\n# expect: exit 56\n"
                  "# expect: not contains title\n# expect: matches ^command terminated\n")
    assert [s.command for s in steps] == ["kubectl get pods -A", "kubectl exec deploy/notsleep -- curl -s httpbin:8000"]
    assert [s.line for s in steps] == [1, 7]
    assert steps[0].narration == ["The pods."]
    assert steps[0].expectations == [Expectation("contains", "Running")]
    assert steps[0].exit_code == 0
    assert steps[1].exit_code == 56
    assert steps[1].expectations[1:] == [Expectation("not contains", "title"),
                                         Expectation("matches", "^command terminated")]


def test_a_heredoc_keeps_its_blank_lines_and_comment_lines_in_its_step() -> None:
    script = ("kubectl apply -f - <<EOF\napiVersion: v1\n\n# expect: exit 3\nkind: ConfigMap\nEOF\n"
              "# expect: contains created\n\ncat <<-'END'\n\tx\n\n\tEND\necho done\n")
    first, second = parse(script)
    assert first.command == "kubectl apply -f - <<EOF\napiVersion: v1\n\n# expect: exit 3\nkind: ConfigMap\nEOF"
    assert first.expectations == [Expectation("contains", "created")]
    assert second.command == "cat <<-'END'\n\tx\n\n\tEND\necho done"


def test_a_loop_is_one_step_and_expect_log_names_component_and_node() -> None:
    (step,) = parse("for i in 1 2 3; do\n  curl -s httpbin:8000\ndone\n"
                    "# expect-log ztunnel ambient-worker2: src.identity=\"spiffe://x\"\n")
    assert step.command.splitlines()[0] == "for i in 1 2 3; do"
    assert step.expectations == [Expectation("log", 'src.identity="spiffe://x"', "ztunnel", "ambient-worker2")]


@pytest.mark.parametrize("script, message", [
    ("true\n# expect: exit maybe\n", "line 2"),
    ("true\n# expect: matches (\n", "bad regular expression"),
    ("true\n# expect: equals 3\n", "not an expectation"),
    ("# expect: exit 0\n", "expectations without a command"),
    ("cat <<EOF\nnever closed\n", "ends inside a heredoc"),
])
def test_bad_scripts_name_the_problem(script: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse(script)


def test_output_checks() -> None:
    assert check_output(Expectation("exit", "56"), 56, "") is None
    assert check_output(Expectation("exit", "0"), 1, "") == "exit code 1, expected 0"
    assert check_output(Expectation("contains", "title"), 0, "<title>") is None
    assert "expected 'nope'" in check_output(Expectation("contains", "nope"), 0, "x")
    assert check_output(Expectation("not contains", "x"), 0, "x") == "did not expect 'x' in the output"
    assert check_output(Expectation("matches", r"^b\d$"), 0, "a\nb1\n") is None
    assert check_output(Expectation("matches", r"^a\d$"), 0, "a\nb1\n") is not None


def test_retry_and_expect_no_log_belong_to_their_step() -> None:
    first, second = parse("kubectl apply -f policy.yaml\n\n# notsleep is refused once the policy is in.\n"
                          "curl -s httpbin:8000\n# retry: 10s\n# expect: exit 56\n"
                          "# expect-no-log istio-cni ambient-worker2: line 2 failed\n")
    assert first.retry == 0.0
    assert second.retry == 10.0 and second.exit_code == 56
    assert second.narration == ["notsleep is refused once the policy is in."]
    assert second.expectations[1] == Expectation("no-log", "line 2 failed", "istio-cni", "ambient-worker2")
    assert parse("true\n# retry: 2.5\n")[0].retry == 2.5
    with pytest.raises(ScriptError, match="line 2: `# retry:` needs a number of seconds"):
        parse("true\n# retry: soon\n")


def test_the_topology_header_is_relative_to_the_script_and_not_narration(tmp_path: Path) -> None:
    script = tmp_path / "repro" / "x" / "repro.sh"
    text = "#!/usr/bin/env bash\n# A repro.\n# topology: ../../ambient.yaml\nkubectl get pods\n"
    assert script_topology(text, script) == (tmp_path / "ambient.yaml").resolve()
    assert parse(text)[0].narration == ["A repro."]
    assert script_topology("kubectl get pods\n# topology: late.yaml\n", script) is None
    assert script_topology("# no header\ntrue\n", script) is None
