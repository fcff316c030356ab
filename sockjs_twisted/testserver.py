"""
The standard SockJS test services, as the protocol suite and sockjs-node's test server
define them: echo, close, disabled_websocket_echo, cookie_needed_echo, ticker, amplify,
broadcast; and multiplex (channels echo, ticker and broadcast over one connection).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from ._resource import SockJSResource
from .hub import IHub, LocalHub
from .multiplex import MultiplexFactory

__all__ = [
    "AmplifyFactory",
    "BroadcastFactory",
    "CloseFactory",
    "EchoFactory",
    "TickerFactory",
    "multiplexChannels",
    "testServices",
]


class _Service(Protocol):
    def _transport(self) -> ITransport:
        assert self.transport is not None
        return self.transport


class Echo(_Service):
    """
    Sends every message back.
    """

    def dataReceived(self, data: bytes) -> None:
        self._transport().write(data)


class EchoFactory(Factory):
    protocol = Echo  # type: ignore[assignment]


class Close(_Service):
    """
    Closes each new session with C{3000 "Go away!"}.
    """

    def connectionMade(self) -> None:
        self._transport().loseConnection()


class CloseFactory(Factory):
    protocol = Close  # type: ignore[assignment]


class Ticker(_Service):
    """
    Sends C{tick!} every second.
    """

    factory: TickerFactory

    def connectionMade(self) -> None:
        self._ticks = LoopingCall(self._transport().write, b"tick!")
        self._ticks.clock = self.factory.clock
        self._ticks.start(1.0, now=False)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._ticks.stop()


class TickerFactory(Factory):
    protocol = Ticker  # type: ignore[assignment]

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock


class Amplify(_Service):
    """
    Message C{n} gets back C{2**n} C{x} characters, C{n} clamped to 1..19.
    """

    def dataReceived(self, data: bytes) -> None:
        try:
            n = int(data)
        except ValueError:
            n = 1
        n = min(max(n, 1), 19)
        self._transport().write(b"x" * 2**n)


class AmplifyFactory(Factory):
    protocol = Amplify  # type: ignore[assignment]


class Broadcast(_Service):
    """
    Sends each message to every open session, through the factory's hub: with a
    L{RedisHub}, to the sessions of every process.
    """

    factory: BroadcastFactory

    def connectionMade(self) -> None:
        self.factory.hub.subscribe(self.factory.channel, self._transport())

    def dataReceived(self, data: bytes) -> None:
        self.factory.hub.publish(self.factory.channel, data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.hub.unsubscribe(self.factory.channel, self._transport())


class BroadcastFactory(Factory):
    """
    :ivar hub: Carries the messages (an in-process L{LocalHub} by default).
    :ivar channel: The hub channel of this service.
    """

    protocol = Broadcast  # type: ignore[assignment]

    def __init__(self, hub: Optional[IHub] = None, channel: str = "broadcast") -> None:
        self.hub: IHub = LocalHub() if hub is None else hub
        self.channel = channel


def multiplexChannels(reactor: IReactorTime, broadcast: Factory) -> MultiplexFactory:
    """
    The C{/multiplex} service: channels C{echo}, C{ticker} and C{broadcast}.

    :param broadcast: The factory of the C{broadcast} channel: the one C{/broadcast}
        serves, so a message on either reaches the members of both (through its hub).
    """
    return MultiplexFactory(
        {"echo": EchoFactory(), "ticker": TickerFactory(reactor), "broadcast": broadcast}
    )


def testServices(
    reactor: Optional[IReactorTime] = None, hub: Optional[IHub] = None, **options: Any
) -> Resource:
    """
    A resource serving every test service below it (C{/echo}, C{/close}, ...).  C{options}
    apply to every service; each service's own settings win.

    :param hub: The hub C{/broadcast} publishes through: a new L{LocalHub} by default.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor  # type: ignore[assignment]
    assert reactor is not None
    broadcast = BroadcastFactory(hub)
    services: dict[str, tuple[Factory, dict[str, Any]]] = {
        "echo": (EchoFactory(), {"response_limit": 4096}),
        "disabled_websocket_echo": (EchoFactory(), {"websocket": False}),
        "cookie_needed_echo": (EchoFactory(), {"jsessionid": True}),
        "close": (CloseFactory(), {}),
        "ticker": (TickerFactory(reactor), {}),
        "amplify": (AmplifyFactory(), {}),
        "broadcast": (broadcast, {}),
        "multiplex": (multiplexChannels(reactor, broadcast), {}),
    }
    root = Resource()
    for name, (factory, own) in services.items():
        settings = {**options, **own, "prefix": "/" + name}
        root.putChild(name.encode("ascii"), SockJSResource(factory, reactor=reactor, **settings))
    return root
