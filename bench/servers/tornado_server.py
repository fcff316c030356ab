"""sockjs-tornado peer for bench/run: /echo, /broadcast and /close on 127.0.0.1:PORT.

Usage: python tornado_server.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sockjs.tornado import SockJSConnection, SockJSRouter
from tornado import web


class Echo(SockJSConnection):
    def on_message(self, message: str) -> None:
        self.send(message)


class Broadcast(SockJSConnection):
    everyone: set[Broadcast] = set()

    def on_open(self, info: object) -> None:
        self.everyone.add(self)

    def on_message(self, message: str) -> None:
        self.broadcast(self.everyone, message)

    def on_close(self) -> None:
        self.everyone.discard(self)


class Close(SockJSConnection):
    # sockjs-tornado 1.0.7 closes the websocket without sending the "c" frame when a
    # session is closed from on_open.
    def on_open(self, info: object) -> None:
        self.close(3000, "Go away!")


async def main(port: int) -> None:
    routes = (
        SockJSRouter(Echo, "/echo").urls
        + SockJSRouter(Broadcast, "/broadcast").urls
        + SockJSRouter(Close, "/close").urls
    )
    web.Application(routes).listen(port, address="127.0.0.1", backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
