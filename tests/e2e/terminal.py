"""A real terminal for tests: a tmux session driven with send-keys, read with capture-pane."""

from __future__ import annotations

import os
import subprocess
import uuid

import trio


PASSED_ON = ("AMBIENT_RUN_ROOT", "PATH", "HOME")


class Terminal:
    def __init__(self, width: int = 160, height: int = 40):
        self.name = f"ambient-test-{uuid.uuid4().hex[:8]}"
        # The tmux server may be someone else's, started with another environment: pass ours on.
        env = [f"{name}={os.environ[name]}" for name in PASSED_ON if name in os.environ]
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        *[arg for pair in env for arg in ("-e", pair)], "bash --norc --noprofile"], check=True)

    def type(self, text: str, enter: bool = True) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        if enter:
            subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def key(self, key: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    async def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """Wait until `text` is on the screen; fail with the screen if it never shows."""
        with trio.move_on_after(timeout):
            while text not in (screen := self.screen()):
                await trio.sleep(0.05)
            return screen
        raise AssertionError(f"{text!r} did not appear on the terminal; it shows:\n{self.screen()}")

    async def wait_for_prompt(self, prompt: str, timeout: float = 20.0) -> None:
        """Wait until the last non-empty line on the screen is exactly `prompt` (a shell waiting)."""
        with trio.move_on_after(timeout):
            while True:
                lines = [line.rstrip() for line in self.screen().splitlines() if line.strip()]
                if lines and lines[-1] == prompt:
                    return
                await trio.sleep(0.05)
        raise AssertionError(f"no {prompt!r} prompt on the terminal; it shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)
