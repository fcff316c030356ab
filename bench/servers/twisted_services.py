"""Plain Twisted protocol factories that bench/run serves with our SockJS server:

    python -m twisted sockjs --factory twisted_services.echo --prefix /echo
    python -m twisted sockjs --factory twisted_services.broadcast --prefix /broadcast
    python -m twisted sockjs --factory twisted_services.close --prefix /close

(bench/servers on PYTHONPATH).  They use the library's default options, as the peers do,
where the standard test services' /echo has response_limit 4096 for the protocol tests.
Nothing here knows about SockJS: one SockJS message is one dataReceived call.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure


class Echo(Protocol):
    """Sends every message back."""

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


class Broadcast(Protocol):
    """Sends each message to every open session of its factory."""

    factory: BroadcastFactory

    def connectionMade(self) -> None:
        self.factory.members.add(self)

    def dataReceived(self, data: bytes) -> None:
        for member in self.factory.members:
            member.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.factory.members.discard(self)


class BroadcastFactory(Factory):
    protocol = Broadcast

    def __init__(self) -> None:
        self.members: set[Broadcast] = set()


class Close(Protocol):
    """Closes each session as it opens (3000 "Go away!", as the protocol suite's /close)."""

    def connectionMade(self) -> None:
        self.transport.loseConnection()  # type: ignore[union-attr]


echo = Factory.forProtocol(Echo)
close = Factory.forProtocol(Close)
broadcast = BroadcastFactory()
