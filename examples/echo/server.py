"""
Echo: every message a browser sends comes back to it.

    .venv/bin/python -m examples.echo.server 8081    # then open http://localhost:8081/

The page (index.html beside this file) is served at C{/} and the SockJS endpoint at
C{/echo}, two children of one ordinary twisted.web resource tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.static import Data

from sockjs_twisted import SockJSResource

PAGE = (Path(__file__).parent / "index.html").read_bytes()


class Echo(Protocol):
    """
    Sends every message back: one C{dataReceived} per SockJS message, one message per
    C{transport.write}.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


# For `twistd sockjs --factory examples.echo.server.factory`.
factory = Factory.forProtocol(Echo)


def resource(reactor: Optional[IReactorTime] = None) -> Resource:
    """
    The page at C{/}, the echo endpoint at C{/echo}.
    """
    root = Resource()
    root.putChild(b"", Data(PAGE, "text/html; charset=utf-8"))
    root.putChild(b"echo", SockJSResource(Factory.forProtocol(Echo), reactor, prefix="/echo"))
    return root


def main() -> None:
    from examples._run import run

    run(resource)


if __name__ == "__main__":
    main()
