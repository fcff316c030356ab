"""aio-libs sockjs (aiohttp) peer for bench/run: /echo, /broadcast, /close on 127.0.0.1:PORT.

Usage: python aio_server.py PORT
"""

from __future__ import annotations

import sys

import sockjs
from aiohttp import web


async def echo(
    manager: sockjs.SessionManager, session: sockjs.Session, msg: sockjs.SockjsMessage
) -> None:
    if msg.type == sockjs.MsgType.MESSAGE:
        session.send(msg.data)


async def broadcast(
    manager: sockjs.SessionManager, session: sockjs.Session, msg: sockjs.SockjsMessage
) -> None:
    if msg.type == sockjs.MsgType.MESSAGE:
        manager.broadcast(msg.data)


async def close(
    manager: sockjs.SessionManager, session: sockjs.Session, msg: sockjs.SockjsMessage
) -> None:
    if msg.type == sockjs.MsgType.OPEN:
        session.close(3000, "Go away!")


def main(port: int) -> None:
    app = web.Application()
    sockjs.add_endpoint(app, echo, name="echo", prefix="/echo")
    sockjs.add_endpoint(app, broadcast, name="broadcast", prefix="/broadcast")
    sockjs.add_endpoint(app, close, name="close", prefix="/close")
    web.run_app(app, host="127.0.0.1", port=port, backlog=1024, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
