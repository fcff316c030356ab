"""sockjs-tornado peer for bench/run: /echo and /broadcast on 127.0.0.1:PORT.

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


async def main(port: int) -> None:
    routes = SockJSRouter(Echo, "/echo").urls + SockJSRouter(Broadcast, "/broadcast").urls
    web.Application(routes).listen(port, address="127.0.0.1", backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
