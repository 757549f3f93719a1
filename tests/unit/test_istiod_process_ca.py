"""istiod's CA child (a stand-in command, as the CA is its own program) and istiod run as a real
process: its log lines, the CA's output in istiod's output, and a clean exit on SIGTERM."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys

import trio

from components.istiod.ca_process import Backoff, CaSupervisor
from tests.unit.test_apiserver_support import api, apiserver, signing_key  # noqa: F401

QUICK = Backoff(initial=0.01, maximum=0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_for(predicate, timeout: float = 2.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_the_ca_is_restarted_with_backoff_when_it_exits(caplog):
    caplog.set_level(logging.INFO)
    supervisor = CaSupervisor("sh -c 'exit 3'", QUICK)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await wait_for(lambda: supervisor.starts >= 3)
        nursery.cancel_scope.cancel()
    restarts = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert restarts[:3] == ["CA exited with code 3; restarting in 10ms", "CA exited with code 3; restarting in 20ms",
                            "CA exited with code 3; restarting in 40ms"]
    assert all(r.name == "istiod.ca" for r in caplog.records if "restarting" in r.getMessage())


async def test_a_ca_command_that_cannot_start_is_retried(caplog):
    caplog.set_level(logging.INFO)
    supervisor = CaSupervisor("/nonexistent/ca --listen 0.0.0.0:15012", QUICK)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await wait_for(lambda: sum("failed to start" in r.getMessage() for r in caplog.records) >= 2)
        nursery.cancel_scope.cancel()
    assert supervisor.starts == 0


async def test_the_ca_is_stopped_with_sigterm_on_shutdown():
    supervisor = CaSupervisor("sleep 30", QUICK)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await wait_for(lambda: supervisor.process is not None)
        process = supervisor.process
        nursery.cancel_scope.cancel()
    assert process.returncode == -signal.SIGTERM


async def test_a_ca_ignoring_sigterm_is_killed_after_the_grace_period():
    supervisor = CaSupervisor("""sh -c 'trap "" TERM; exec sleep 30'""", QUICK, grace=0.2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await wait_for(lambda: supervisor.process is not None)
        process = supervisor.process
        await trio.sleep(0.1)  # let sh set its trap and exec
        nursery.cancel_scope.cancel()
    assert process.returncode == -signal.SIGKILL


async def test_istiod_process_logs_serves_and_exits_cleanly_on_sigterm(api):
    marker = "ca-stand-in-says-hello"
    argv = [sys.executable, "-m", "components.istiod", "--api", api.address, "--xds", "127.0.0.1:0",
            "--http", "127.0.0.1:0", "--ca-command", f"sh -c 'echo {marker}; exec sleep 30'"]
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    try:
        with trio.fail_after(8):
            while b"marking server ready" not in output or marker.encode() not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
            process.send_signal(signal.SIGTERM)
            while chunk := await process.stdout.receive_some():
                output += chunk
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
    text = output.decode()
    ca_pid = int(re.search(r"\tinfo\tca\tCA started \(pid (\d+)\)", text).group(1))
    assert not alive(ca_pid)
    assert re.search(r"^\S+Z\tinfo\tFLAG: --root-namespace=\"istio-system\"$", text, re.M)
    assert re.search(r"^\S+Z\tinfo\tstarting discovery service at 127\.0\.0\.1:\d+ ", text, re.M)
    assert re.search(r"^\S+Z\tinfo\tads\tAll caches have been synced up in [\d.]+ms, marking server ready$",
                     text, re.M)
    assert re.search(r"^\S+Z\tinfo\tads\tPushing ambient config version 1 to 0 subscribers", text, re.M)
    assert "received SIGTERM, shutting down" in text
    assert "Traceback" not in text
