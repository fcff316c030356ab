"""
The standard SockJS test services, as the protocol suite and sockjs-node's test server
define them: echo, close, disabled_websocket_echo, cookie_needed_echo, ticker, amplify,
broadcast; and multiplex (channels echo, ticker and broadcast over one connection).
"""

from __future__ import annotations

from html import escape
from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from ._resource import SockJSResource
from .hub import IHub, LocalHub
from .multiplex import MultiplexFactory

__all__ = [
    "AmplifyFactory",
    "BroadcastFactory",
    "CloseFactory",
    "EchoFactory",
    "Index",
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


# What the index page says of each service.
DESCRIPTIONS = {
    "echo": "sends every message back",
    "disabled_websocket_echo": "the echo, without the websocket transports",
    "cookie_needed_echo": "the echo, with a JSESSIONID cookie",
    "close": 'closes every session at once with 3000 "Go away!"',
    "ticker": "sends tick! every second",
    "amplify": "answers a number n with 2**n x characters",
    "broadcast": "sends each message to every open session",
    "multiplex": "echo, ticker and broadcast as channels of one connection (websocket-multiplex)",
}


class Index(Resource):
    """
    C{GET /}: a short HTML page that lists the SockJS services beside it.
    """

    isLeaf = True

    def __init__(self, root: Resource) -> None:
        super().__init__()
        self._root = root

    def render_GET(self, request: Request) -> bytes:
        items = "".join(
            f'<li><a href="{escape(name)}"><code>/{escape(name)}</code></a>: '
            f"{escape(DESCRIPTIONS.get(name, ''))}</li>\n"
            for name in sorted(
                n.decode("utf-8")
                for n, child in self._root.children.items()
                if isinstance(child, SockJSResource)
            )
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return (
            "<!DOCTYPE html>\n<title>SockJS test services</title>\n"
            "<h1>SockJS test services</h1>\n"
            "<p>Each is a SockJS endpoint: connect sockjs-client to its URL, e.g. "
            '<code>new SockJS("http://host:port/echo")</code>.</p>\n'
            f"<ul>\n{items}</ul>\n"
        ).encode()


def testServices(
    reactor: Optional[IReactorTime] = None, hub: Optional[IHub] = None, **options: Any
) -> Resource:
    """
    A resource serving every test service below it (C{/echo}, C{/close}, ...), and a page
    that lists them at C{/}.  C{options} apply to every service; each service's own
    settings win.

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
    root.putChild(b"", Index(root))
    return root
