"""
An existing line protocol (L{examples.lines.commands}), served to browsers unchanged and
to telnet at the same time, by the same factory:

    .venv/bin/python -m examples.lines.server 8081 8023    # page on http://localhost:8081/, telnet on 8023

Over SockJS, each C{transport.write} is one message and each message is one
C{dataReceived}.  C{LineReceiver} needs nothing more: the page ends each command with
CR LF, C{sendLine} writes one line (CR LF included) per message, and a line split over
several messages is put together by C{LineReceiver} as it would be over TCP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource
from twisted.web.static import Data

from sockjs_twisted import SockJSResource

from .commands import CommandFactory

PAGE = (Path(__file__).parent / "index.html").read_bytes()

# For `twistd sockjs --factory examples.lines.server.factory`.
factory = CommandFactory()


def resource(
    reactor: Optional[IReactorTime] = None, commands: Optional[CommandFactory] = None
) -> Resource:
    """
    The page at C{/}, the command protocol at C{/lines}.

    :param commands: The factory to serve (a new one by default).
    """
    root = Resource()
    root.putChild(b"", Data(PAGE, "text/html; charset=utf-8"))
    endpoint = SockJSResource(commands or CommandFactory(), reactor, prefix="/lines")
    root.putChild(b"lines", endpoint)
    return root


def main(argv: Optional[list[str]] = None) -> None:
    """
    C{python -m examples.lines.server [WEB-ENDPOINT [TELNET-ENDPOINT]]}: the page and
    SockJS on C{tcp:8081}, telnet on C{tcp:8023} by default.
    """
    import sys

    from examples._run import run

    args = list(sys.argv[1:] if argv is None else argv)
    telnet = args[1] if len(args) > 1 else "tcp:8023"
    # One factory, two ways in: SockJS for browsers, plain TCP for telnet.
    run(lambda reactor: resource(reactor, factory), args[:1], extra=[(telnet, factory)])


if __name__ == "__main__":
    main()
