"""
Tools for testing code that uses sockjs_twisted.

L{ProtocolHarness} runs your protocol factory in memory. It wraps the factory in a real
L{sockjs_twisted.SessionRegistry} on a L{twisted.internet.task.Clock}, so no sockets are
involved. Each L{FakeClient} it connects is one SockJS session. The client speaks bytes,
as your protocol does: it records what your protocol sends and what the session does,
and sends messages to your protocol just as a real transport would. As on a real
server, what your protocol writes goes out once per reactor turn, so call
L{FakeClient.flush} (or advance the clock) before you look at L{FakeClient.received}.

L{SockJSClient} is a SockJS client for real servers. It speaks the websocket,
xhr-streaming and xhr-polling transports and connects an ordinary Twisted protocol to a
SockJS endpoint: C{transport.write(bytes)} sends one message, and C{dataReceived(bytes)}
receives one.

Example: a test of an echo protocol that you can copy::

    from twisted.internet.protocol import Factory, Protocol
    from twisted.trial.unittest import SynchronousTestCase

    from sockjs_twisted.testing import ProtocolHarness


    class Echo(Protocol):
        def dataReceived(self, data):
            self.transport.write(data)


    class EchoTests(SynchronousTestCase):
        def test_echo(self):
            harness = ProtocolHarness(Factory.forProtocol(Echo), heartbeat_delay=10)
            client = harness.connect()
            client.send(b"hello", "wörld".encode())
            client.flush()
            self.assertEqual(client.received, [b"hello", "wörld".encode()])

            harness.clock.advance(10)
            self.assertEqual(client.frames[-1], "h")

            client.disconnect()
            self.assertEqual(harness.clock.getDelayedCalls(), [])

Against a real server, in an C{async} test method of a reactor-based
C{twisted.trial.unittest.TestCase}::

    client = SockJSClient(reactor, "http://127.0.0.1:8081/echo", "xhr-streaming")
    protocol = await client.connect(MyProtocol())
    protocol.transport.write(b"hello")
    ...
    protocol.transport.loseConnection()

The protocol's C{connectionLost} comes once every connection the client made for it is
closed, so a test that waits for it leaves a clean reactor behind.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
)
from twisted.internet.task import Clock
from zope.interface import implementer

from ._framing import messageFrame
from ._options import SockJSOptions
from ._registry import SessionRegistry
from ._session import ANOTHER_CONNECTION, SHUTDOWN, ConnectionInfo, Session, SockJSTransport
from .client import TRANSPORTS, SockJSClient, SockJSClientTransport
from .interfaces import ISessionSink

__all__ = [
    "TRANSPORTS",
    "FakeClient",
    "ProtocolHarness",
    "SockJSClient",
    "SockJSClientTransport",
]


# -- the in-memory harness ---------------------------------------------------------------


@implementer(IProtocolFactory)
class _RecordingFactory:
    """
    Forwards to the user's factory, and remembers the protocol it built last.
    """

    def __init__(self, factory: IProtocolFactory) -> None:
        self.wrapped = factory
        self.built: Optional[IProtocol] = None

    def doStart(self) -> None:
        self.wrapped.doStart()

    def doStop(self) -> None:
        self.wrapped.doStop()

    def buildProtocol(self, addr: IAddress) -> Optional[IProtocol]:
        self.built = self.wrapped.buildProtocol(addr)
        return self.built


class ProtocolHarness:
    """
    Connect fake SockJS clients to the protocols of C{factory}, in memory, on a clock.

    The sessions are real sessions of a L{sockjs_twisted.SessionRegistry}.  A client
    connects as a websocket by default: its session lives as long as its one connection.
    With C{transport="xhr-streaming"} or C{"xhr-polling"} it is an HTTP session, which
    outlives its receiving connections: it waits C{disconnect_delay} for the client to
    L{FakeClient.reconnect}, as a real server does.

    :ivar clock: The clock that drives the sessions' flushes and heartbeats.
    :ivar sessions: The L{SessionRegistry} around C{factory}.
    :ivar options: The endpoint's L{SockJSOptions}.
    :ivar clients: Every client connected so far, in order.
    """

    def __init__(
        self, factory: IProtocolFactory, clock: Optional[Clock] = None, **options: Any
    ) -> None:
        """
        :param factory: The protocol factory under test.
        :param clock: The clock to use; a new L{Clock} by default.
        :param options: L{SockJSOptions}, e.g. C{heartbeat_delay=10}.
        """
        self.clock = clock if clock is not None else Clock()
        self.options = SockJSOptions(**options)
        self._factory = _RecordingFactory(factory)
        self.sessions = SessionRegistry(self._factory, self.options, self.clock)
        self.clients: list[FakeClient] = []

    def connect(
        self,
        headers: Optional[dict[str, str]] = None,
        peer: Optional[IAddress] = None,
        transport: str = "websocket",
    ) -> FakeClient:
        """
        Open a new session, as a browser's first connection would.

        The protocol gets C{makeConnection} before this returns. If the endpoint refuses
        the session (its factory's C{buildProtocol} returned C{None}, or C{max_sessions}
        is reached), the client is closed already and has no session.

        :param headers: The request headers the session exposes (C{transport.headers}).
        :param peer: The client's address; C{127.0.0.1} and a new port by default.
        :param transport: C{"websocket"}, C{"xhr-streaming"} (an HTTP session whose
            receiving connection stays until L{FakeClient.disconnect}) or
            C{"xhr-polling"} (one whose receiving connection ends after each frame).
        :raise ValueError: An unknown C{transport}.
        """
        if transport not in _HARNESS_TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(_HARNESS_TRANSPORTS)}, not {transport!r}"
            )
        number = len(self.clients) + 1
        client = FakeClient(self.clock, f"session{number}", transport)
        self.clients.append(client)
        if peer is None:
            peer = IPv4Address("TCP", "127.0.0.1", 40000 + number)
        prefix = self.options.prefix
        path = "websocket" if transport == "websocket" else transport.replace("-", "_")
        if path == "xhr_polling":
            path = "xhr"
        client._info = ConnectionInfo(
            peer=peer,
            host=IPv4Address("TCP", "127.0.0.1", 8081),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            url=f"{prefix}/000/{client.sessionId}/{path}",
        )
        client._registry = self.sessions
        self._factory.built = None
        registered = transport != "websocket"
        # The harness listens from its first client on: the factory starts then.
        self.sessions.start()
        if self.sessions.openSession(client.sessionId, client, client._info, registered):
            client.protocol = self._factory.built
        return client

    def flush(self) -> None:
        """
        End the reactor turn: deliver what the protocols wrote to their clients.
        """
        self.clock.advance(0)

    def stop(self) -> None:
        """
        Shut the endpoint down as a stopping server does: close every session with
        C{1001 "Server shutting down"} and stop the factory.
        """
        self.sessions.closeAll(*SHUTDOWN)
        self.sessions.stop()


_HARNESS_TRANSPORTS = ("websocket", "xhr-streaming", "xhr-polling")


@implementer(ISessionSink)
class FakeClient:
    """
    One fake browser connected to a L{ProtocolHarness}: the sink of one session.

    It speaks bytes, as the protocol does: L{send} takes UTF-8 messages and
    L{received} holds them.

    :ivar sessionId: The session's id.
    :ivar session: The session (the machinery behind the protocol's transport); C{None}
        if it was refused.
    :ivar transport: The protocol's transport, or C{None}.
    :ivar protocol: The protocol the factory built for this session, or C{None}.
    :ivar protocolName: The SockJS transport this client uses.
    :ivar frames: Every SockJS frame sent to this client, in order: C{"o"}, C{"h"},
        C{'a["message"]'}, C{'c[3000,"Go away!"]'}.
    :ivar received: The messages the protocol sent, as UTF-8 bytes (lone surrogates
        with C{'surrogatepass'}).
    :ivar closed: C{(code, reason)} once the session is closed, else C{None}.
    :ivar disconnected: Has this client gone away (L{disconnect}) and not come back?
    :ivar receiving: Is a receiving connection of this client attached now?
    :ivar sendsWaiting: How many of this client's sends wait for their answer because
        the protocol paused reading.
    :ivar sinkPaused: Is this client paused (L{pause})?
    """

    def __init__(self, clock: Clock, sessionId: str, transport: str = "websocket") -> None:
        """
        :param clock: The harness's clock.
        :param sessionId: The id of the session this client opens.
        :param transport: The SockJS transport this client uses.
        """
        self._clock = clock
        self.sessionId = sessionId
        self.protocolName = transport
        self.session: Optional[Session] = None
        self.protocol: Optional[IProtocol] = None
        self.frames: list[str] = []
        self.received: list[bytes] = []
        self.closed: Optional[tuple[int, str]] = None
        self.disconnected = False
        self.receiving = False
        self.sendsWaiting = 0
        self.sinkPaused = False
        self._info: Optional[ConnectionInfo] = None
        self._registry: Optional[SessionRegistry] = None

    def __repr__(self) -> str:
        return f"<FakeClient {self.sessionId!r} closed={self.closed!r}>"

    @property
    def transport(self) -> Optional[SockJSTransport]:
        """
        The protocol's transport.
        """
        return self.session.transport if self.session is not None else None

    @property
    def heartbeats(self) -> int:
        """
        How many heartbeat frames this client got.
        """
        return self.frames.count("h")

    # -- what a test does -------------------------------------------------------------------

    def send(self, *messages: bytes) -> None:
        """
        Send messages to the protocol, one C{dataReceived} each, as one C{xhr_send} or
        websocket message carrying all of them would.  If the protocol pauses reading,
        the rest wait (L{sendsWaiting} counts the sends not answered yet).

        :param messages: UTF-8 text, as the protocol gets it; lone surrogates (UTF-8
            with C{'surrogatepass'}) are what JavaScript strings may hold.
        :raise TypeError: A message is not C{bytes}.
        :raise ValueError: A message is not UTF-8.
        """
        for message in messages:
            if type(message) is not bytes:
                raise TypeError(f"send() takes bytes messages, not {type(message).__name__}")
            try:
                message.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as e:
                raise ValueError(f"send() takes UTF-8 text: {e}") from None
        session = self.session
        if session is None or (self.disconnected and self.protocolName == "websocket"):
            return
        waiting = session.messagesReceived(list(messages))
        if waiting is not None:
            self.sendsWaiting += 1
            waiting.addCallback(self._answered)

    def _answered(self, ignored: object) -> None:
        self.sendsWaiting -= 1

    def flush(self) -> None:
        """
        End the reactor turn (C{clock.advance(0)}): what the protocols wrote is sent.
        """
        self._clock.advance(0)

    def disconnect(self, aborted: bool = False) -> None:
        """
        The client's receiving connection goes away.

        On a websocket the session ends: the protocol gets C{connectionLost} with
        L{ConnectionDone}, or with L{ConnectionLost} if C{aborted} (the network dropped
        the connection).  An HTTP session waits C{disconnect_delay} for L{reconnect}
        (then its protocol gets L{ConnectionLost}); one whose receiving request is
        C{aborted} is closed with C{1002 "Connection interrupted"}.
        """
        if self.disconnected:
            return
        self.disconnected = True
        self.receiving = False
        session = self.session
        if session is not None:
            session.detach(self, aborted)

    def reconnect(self) -> None:
        """
        A new receiving request of this HTTP session: it gets what is queued (or the
        close frame) at once.

        :raise RuntimeError: This client is a websocket, its receiving connection is
            still attached, or its session expired.
        """
        if self.protocolName == "websocket":
            raise RuntimeError("a websocket session cannot reconnect")
        if self.receiving:
            raise RuntimeError("the receiving connection is still attached")
        session = self.session
        if session is None or self._info is None:
            return
        if self.expired:
            raise RuntimeError(
                "the session expired (disconnect_delay passed); connect() opens a new one"
            )
        self.disconnected = False
        self.receiving = True
        session.attach(self, self._info)

    @property
    def expired(self) -> bool:
        """
        Has this HTTP session been reaped, its C{disconnect_delay} passed without a
        receiving connection (or the server stopped)?
        """
        registry = self._registry
        return (
            self.protocolName != "websocket"
            and registry is not None
            and self.session is not None
            and registry.getSession(self.sessionId) is not self.session
        )

    def pause(self) -> None:
        """
        Stop taking frames, as a client that does not read does: the session queues them.
        """
        self.sinkPaused = True

    def resume(self) -> None:
        """
        Take frames again; the session sends what it queued.
        """
        self.sinkPaused = False
        if self.session is not None and self.receiving:
            self.session.resumeProducing()

    # -- ISessionSink, called by the session --------------------------------------------

    def bindSession(self, session: Session) -> None:
        """
        The session this client carries.
        """
        self.session = session
        self.receiving = True

    def writeFrame(self, frame: str) -> None:
        """
        Record one frame; a close frame closes this client.  A polling client's
        receiving connection ends after each frame.
        """
        self.frames.append(frame)
        if frame.startswith("c"):
            code, reason = json.loads(frame[1:])
            self.closed = (code, reason)
        if self.protocolName == "xhr-polling" and self.receiving:
            self.receiving = False
            if self.session is not None:
                self.session.detach(self, False)

    def writeMessages(self, quoted: list[str]) -> None:
        """
        Record an C{a[...]} frame and its messages.
        """
        frame = messageFrame(quoted)
        self.received.extend(
            message.encode("utf-8", "surrogatepass") for message in json.loads(frame[1:])
        )
        self.writeFrame(frame)

    def finishSink(self, code: int, reason: str) -> None:
        """
        The session is done with this client's receiving connection.
        """
        self.receiving = False
        if (code, reason) != ANOTHER_CONNECTION:
            self.closed = (code, reason)
