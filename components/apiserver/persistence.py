"""The store on disk: `<data-dir>/store.json`, written shortly after writes (debounced) by an
atomic rename, and read back at start so a restarted apiserver keeps its objects."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import trio

from components.apiserver.store import Store

log = logging.getLogger(__name__)


class Persister:
    def __init__(self, store: Store, data_dir: Path, delay: float = 0.2):
        self.store = store
        self.path = data_dir / "store.json"
        self.delay = delay
        self.saved_version = -1

    def load(self) -> bool:
        """Load the saved store, if there is one."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return False
        self.store.restore(data)
        self.saved_version = self.store.resource_version
        log.info("Loaded %d objects at resourceVersion %d from %s",
                 len(data.get("objects", [])), self.store.resource_version, self.path)
        return True

    def _write(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)

    def _encode(self) -> tuple[int, bytes]:
        return self.store.resource_version, json.dumps(self.store.snapshot(), separators=(",", ":")).encode()

    def save_now(self) -> None:
        """Write the store synchronously if it changed (used at shutdown)."""
        if self.saved_version == self.store.resource_version:
            return
        self.saved_version, data = self._encode()
        self._write(data)

    async def run(self) -> None:
        """Save after every burst of writes until cancelled, then once more."""
        try:
            while True:
                await self.store.wait_beyond(self.saved_version)
                await trio.sleep(self.delay)
                version, data = self._encode()
                await trio.to_thread.run_sync(self._write, data)
                self.saved_version = version
        finally:
            self.save_now()
