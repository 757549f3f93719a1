"""TLS over a trio stream, reading every complete record at once: the transport under HBONE.

`trio.SSLStream` hands back one TLS record (at most 16 KiB) per `receive_some`, and every call is
a trip through trio's scheduler; at tunnel speeds that trip, not the cipher, is most of the CPU.
This stream feeds whatever ciphertext the transport has (up to 256 KiB) into OpenSSL and decrypts
all complete records in one call. It speaks what HBONE needs and no more: TLS 1.3 contexts from
`tls.py`, no renegotiation; post-handshake messages (session tickets, key updates) are handled
by OpenSSL inside `read`, and anything they make OpenSSL send is flushed.
"""

from __future__ import annotations

import ssl
from typing import Any

import trio

READ_SIZE = 256 * 1024
RECORD_SIZE = 16 * 1024 + 256


class TLSStream(trio.abc.Stream):
    """A TLS connection over `transport`; `do_handshake()` first (send/receive do it if needed)."""

    def __init__(self, transport: trio.abc.Stream, context: ssl.SSLContext, *, server_side: bool = False,
                 server_hostname: str | None = None) -> None:
        self.transport_stream = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._write_lock = trio.Lock()
        self._handshake_lock = trio.Lock()
        self._handshake_done = False
        self._receiving = False
        self._sending = False
        self._eof = False
        self._closed = False
        self._broken: BaseException | None = None

    # What tls.py and tests look at after the handshake.

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._ssl.getpeercert(binary_form)

    def selected_alpn_protocol(self) -> str | None:
        return self._ssl.selected_alpn_protocol()

    def version(self) -> str | None:
        return self._ssl.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self._ssl.cipher()

    # Internals

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("TLS stream is closed")
        if self._broken is not None:
            raise trio.BrokenResourceError("TLS stream is broken") from self._broken

    def _fail(self, exc: BaseException) -> trio.BrokenResourceError:
        self._broken = exc
        error = trio.BrokenResourceError(str(exc))
        error.__cause__ = exc
        return error

    async def _flush(self) -> None:
        """Write out whatever OpenSSL produced; one writer at a time keeps records in order.

        The lock holder drains the buffer until it is empty, so bytes queued while it was
        sending go out with it and nobody else needs to wait for the lock.
        """
        async with self._write_lock:
            while self._outgoing.pending:
                await self.transport_stream.send_all(self._outgoing.read())

    async def _fill(self) -> bool:
        """Read ciphertext from the transport into OpenSSL; False at the transport's EOF."""
        data = await self.transport_stream.receive_some(READ_SIZE)
        if not data:
            return False
        self._incoming.write(data)
        return True

    async def do_handshake(self) -> None:
        """Run the handshake; failures (including a peer's alert) are trio.BrokenResourceError."""
        self._check()
        async with self._handshake_lock:
            while not self._handshake_done:
                try:
                    self._ssl.do_handshake()
                    self._handshake_done = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    error = self._fail(exc)
                    await self._flush_quietly()
                    raise error from exc
                await self._flush()
                if not self._handshake_done and not await self._fill():
                    raise self._fail(ssl.SSLEOFError("peer closed the connection during the TLS handshake"))
        await trio.lowlevel.checkpoint()

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # trio.abc.Stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this TLS stream")
        self._receiving = True
        try:
            self._check()
            if not self._handshake_done:
                await self.do_handshake()
            limit = max_bytes or READ_SIZE
            while True:
                data = self._decrypt(limit)
                # What reading made OpenSSL send (a key update answer): ours to write only if no
                # writer is busy, which would otherwise take it along. Waiting for a writer that
                # is blocked on a full transport would stop this side reading: a deadlock.
                if self._outgoing.pending and not self._write_lock.locked():
                    await self._flush()
                if data or self._eof:
                    await trio.lowlevel.checkpoint()
                    return data
                if not await self._fill():
                    raise self._fail(ssl.SSLEOFError("peer closed the connection without close_notify"))
        finally:
            self._receiving = False

    def _decrypt(self, limit: int) -> bytearray:
        """Every plaintext byte the buffered records hold, up to `limit`, in one buffer."""
        buffer = bytearray(min(limit, max(RECORD_SIZE, self._incoming.pending)))
        view = memoryview(buffer)
        size = 0
        try:
            while size < len(buffer):
                count = self._ssl.read(len(buffer) - size, view[size:])
                if not count:
                    self._eof = True
                    break
                size += count
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self._eof = True
        except ssl.SSLError as exc:
            view.release()
            raise self._fail(exc) from exc
        view.release()
        del buffer[size:]
        return buffer

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this TLS stream")
        self._sending = True
        try:
            self._check()
            if not self._handshake_done:
                await self.do_handshake()
            if data:
                try:
                    self._ssl.write(data)
                except ssl.SSLError as exc:
                    raise self._fail(exc) from exc
            await self._flush()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        self._check()
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send close_notify (without waiting for the peer's) and close the transport."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshake_done and self._broken is None:
                try:
                    self._ssl.unwrap()
                except ssl.SSLError:
                    pass
                await self._flush_quietly()
        finally:
            await self.transport_stream.aclose()
