"""
The server of the real-socket shutdown tests in L{tests.test_factory}.

``python -m tests._shutdownserver site|factory`` serves an echo endpoint at ``/chat`` on
127.0.0.1, on a port the kernel picks, on the default reactor: as a
L{sockjs_twisted.SockJSResource} (no prefix option) in a plain C{Site} (``site``), or as
a L{sockjs_twisted.SockJSFactory} with ``prefix="/chat"`` (``factory``).  It writes one
line per event to stdout (``port <n>``, ``startFactory``, ``made <session> <prefix>``,
``lost <session> <reason>``, ``stopFactory``, ``reactor stopped``) and runs until
SIGTERM.
"""

from __future__ import annotations

import sys

from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from sockjs_twisted import SockJSFactory, SockJSResource


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Echo(Protocol):
    def connectionMade(self) -> None:
        transport = self.transport
        say(f"made {transport.sessionId} {transport.prefix}")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        sessionId = self.transport.sessionId  # type: ignore[union-attr]
        say(f"lost {sessionId} {reason.type.__name__}")


class Echoes(Factory):
    protocol = Echo

    def startFactory(self) -> None:
        say("startFactory")

    def stopFactory(self) -> None:
        say("stopFactory")


def main(mode: str) -> None:
    from twisted.internet import reactor

    site: Site
    if mode == "site":
        root = Resource()
        root.putChild(b"chat", SockJSResource(Echoes(), reactor))
        site = Site(root)
    else:
        site = SockJSFactory(Echoes(), reactor, prefix="/chat")
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    say(f"port {port.getHost().port}")
    reactor.run()  # type: ignore[attr-defined]
    say("reactor stopped")


if __name__ == "__main__":
    main(sys.argv[1])
