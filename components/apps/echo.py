"""A TCP echo server: every byte a client sends comes back, until the client closes.

`python -m components.apps.echo [--port 9000]` listens on 0.0.0.0.
"""

from __future__ import annotations

import argparse
import sys

import trio

READ_SIZE = 65536


async def echo(stream: trio.abc.Stream) -> None:
    """Echo one connection; a client's half-close ends it once everything was sent back."""
    try:
        async with stream:
            while True:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    return
                await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def serve(port: int, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
                ) -> None:
    listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
    print(f"listening on 0.0.0.0:{port}", file=sys.stderr, flush=True)
    await trio.serve_listeners(echo, listeners, task_status=task_status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="echo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.port)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
