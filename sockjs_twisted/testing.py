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
import secrets
import uuid
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import HostnameAddress, IPv4Address
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectError, ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from ._framing import messageFrame
from ._options import SockJSOptions
from ._registry import SessionRegistry
from ._session import ANOTHER_CONNECTION, SHUTDOWN, ConnectionInfo, Session, SockJSTransport
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


# -- the network client ------------------------------------------------------------------

_PRELUDE = b"h" * 2048

_HTTP_RECEIVERS = {"xhr-streaming": "xhr_streaming", "xhr-polling": "xhr"}
TRANSPORTS = ("websocket", "xhr-streaming", "xhr-polling")

_CONNECTING, _OPEN, _CLOSING, _CLOSED = 0, 1, 2, 3


class _HTTPStatusError(Exception):
    """
    A SockJS URL answered with an unexpected status.
    """


def _asMessages(payload: str) -> list[str]:
    messages = json.loads(payload)
    if type(messages) is not list or not all(type(m) is str for m in messages):
        raise ValueError("not a JSON array of strings")
    return messages


def _asClose(payload: str) -> tuple[int, str]:
    close = json.loads(payload)
    if type(close) is not list or len(close) != 2:
        raise ValueError("not a [code, reason] array")
    code, reason = close
    if type(code) is not int or type(reason) is not str:
        raise ValueError("not a [code, reason] array")
    return code, reason


@implementer(ITransport)
class SockJSClientTransport:
    """
    The transport of a protocol that L{SockJSClient} connected: one SockJS session, seen
    from the client.

    :ivar sessionId: The session's id.
    :ivar url: The session's URL (C{<base>/<server>/<session>}).
    :ivar transportName: C{"websocket"}, C{"xhr-streaming"} or C{"xhr-polling"}.
    :ivar closeCode: The code of the server's close frame, once it arrived.
    :ivar closeReason: The reason of the server's close frame, once it arrived.
    :ivar heartbeats: How many heartbeat frames arrived.
    :ivar connected: Is the session open?
    :ivar disconnecting: Did the protocol call L{loseConnection}?
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        protocol: IProtocol,
        url: str,
        sessionId: str,
        transportName: str,
        peer: IAddress,
    ) -> None:
        """
        :param reactor: Provides C{callLater}, for the one flush of writes per turn.
        :param protocol: The protocol to connect.
        :param url: The session's URL.
        :param sessionId: The session's id.
        :param transportName: The SockJS transport used.
        :param peer: The server's address.
        """
        self._reactor = reactor
        self._protocol = protocol
        self.url = url
        self.sessionId = sessionId
        self.transportName = transportName
        self._peer = peer
        self.closeCode: Optional[int] = None
        self.closeReason: Optional[str] = None
        self.heartbeats = 0
        self.connected = False
        self.disconnecting = False
        self._state = _CONNECTING
        self._link: Any = None
        self._connecting: Optional[Deferred[IProtocol]] = None
        self._error: Optional[Exception] = None
        self._outgoing: list[str] = []
        self._flushCall: Optional[IDelayedCall] = None

    def __repr__(self) -> str:
        return f"<SockJSClientTransport {self.transportName} {self.url}>"

    # -- ITransport, for the protocol --------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send one message. Messages written in one reactor turn travel together.

        :param data: UTF-8 text.
        :raise TypeError: C{data} is not bytes.
        :raise ValueError: C{data} is not UTF-8.
        """
        if type(data) is not bytes:
            raise TypeError(
                f"transport.write() takes bytes (one UTF-8 message), not {type(data).__name__}"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"transport.write() takes UTF-8 text: {e}") from None
        if self._state != _OPEN or self.disconnecting:
            return
        self._outgoing.append(text)
        if self._flushCall is None:
            self._flushCall = self._reactor.callLater(0, self._flush)

    def writeSequence(self, data: list[bytes]) -> None:  # type: ignore[override]
        """
        Send the concatenation of C{data} as one message.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the session from the client side, after the messages already written: the
        websocket is closed, or the receiving request is dropped. The protocol's
        C{connectionLost} follows with L{ConnectionDone}.

        SockJS has no close message over HTTP: the server's protocol learns of the close
        when the receiving request is dropped, or, if none was under way, once the
        session's C{disconnect_delay} has passed.
        """
        if self._state != _OPEN or self.disconnecting:
            return
        self.disconnecting = True
        self._flush()
        self._link.loseConnection()

    def abortConnection(self) -> None:
        """
        Close the session now, dropping messages not sent yet.
        """
        if self._state != _OPEN:
            return
        self.disconnecting = True
        self._error = ConnectionAborted()
        self._state = _CLOSING
        self._outgoing = []
        self._cancelFlush()
        self._link.abortConnection()

    def getPeer(self) -> IAddress:
        """
        The server's address, from the URL.
        """
        return self._peer

    def getHost(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        C{None}: a SockJS session over HTTP uses many connections, none of which is its
        own.
        """
        return None

    # -- from SockJSClient ---------------------------------------------------------------

    def _start(self, link: Any) -> Deferred[IProtocol]:
        self._link = link
        self._connecting = Deferred(self._cancelConnect)
        connecting = self._connecting
        link.start()
        return connecting

    def _cancelConnect(self, d: Deferred[IProtocol]) -> None:
        self._connecting = None
        self._state = _CLOSING
        self._link.abortConnection()

    # -- from the links ----------------------------------------------------------------------

    def _frameReceived(self, frame: str) -> None:
        """
        Handle one SockJS frame from the server.
        """
        if self._state > _CLOSING:
            return
        kind, payload = frame[:1], frame[1:]
        if frame == "h":
            self.heartbeats += 1
            return
        if self._state == _CLOSING:
            if kind == "c" and self.closeCode is None:
                try:
                    self.closeCode, self.closeReason = _asClose(payload)
                except ValueError:
                    pass
            return
        if frame == "o":
            if self._state != _CONNECTING:
                self._protocolError("a second open frame")
                return
            self._opened()
        elif kind == "a":
            if self._state != _OPEN:
                self._protocolError("a message frame before the open frame")
                return
            try:
                messages = _asMessages(payload)
            except ValueError as e:
                self._protocolError(f"broken message frame {frame!r}: {e}")
                return
            self._deliver(messages)
        elif kind == "c":
            try:
                self.closeCode, self.closeReason = _asClose(payload)
            except ValueError as e:
                self._protocolError(f"broken close frame {frame!r}: {e}")
                return
            self._state = _CLOSING
            self._outgoing = []
            self._cancelFlush()
            self._link.serverClosed()
        else:
            self._protocolError(f"unknown frame {frame!r}")

    def _protocolError(self, why: str) -> None:
        """
        The server broke the SockJS protocol: drop the session.
        """
        if self._state > _CLOSING:
            return
        if self._error is None:
            self._error = ConnectionLost(f"SockJS protocol error: {why}")
        self._state = _CLOSING
        self._outgoing = []
        self._cancelFlush()
        self._link.abortConnection()

    def _linkLost(self, reason: Failure) -> None:
        """
        The connections below are all gone; C{reason} says why.
        """
        if self._state == _CLOSED:
            return
        wasConnected = self.connected
        self._state = _CLOSED
        self.connected = False
        self._outgoing = []
        self._cancelFlush()
        if not wasConnected:
            connecting, self._connecting = self._connecting, None
            if connecting is not None and not connecting.called:
                connecting.errback(self._connectFailure(reason))
            return
        if self._error is not None:
            reason = Failure(self._error)
        elif self.closeCode is not None:
            reason = Failure(ConnectionDone())
        elif not reason.check(ConnectionDone, ConnectionLost):
            reason = Failure(ConnectionLost(reason.getErrorMessage()))
        protocol = self._protocol
        try:
            protocol.connectionLost(reason)
        except BaseException:
            self.log.failure("The protocol's connectionLost raised")

    # -- internals -----------------------------------------------------------------------------

    def _connectFailure(self, reason: Failure) -> Failure:
        if self.closeCode is not None:
            return Failure(
                ConnectError(string=f"SockJS session refused: {self.closeCode} {self.closeReason}")
            )
        if self._error is not None:
            return Failure(ConnectError(string=str(self._error)))
        if reason.check(ConnectError, CancelledError):
            return reason
        return Failure(ConnectError(string=reason.getErrorMessage()))

    def _opened(self) -> None:
        self._state = _OPEN
        self.connected = True
        protocol = self._protocol
        try:
            protocol.makeConnection(self)
        except BaseException:
            self.log.failure("The protocol's makeConnection raised")
            self.loseConnection()
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.callback(protocol)

    def _deliver(self, messages: list[str]) -> None:
        protocol = self._protocol
        for message in messages:
            if self._state != _OPEN or self.disconnecting:
                return
            try:
                data = message.encode("utf-8")
            except UnicodeEncodeError:
                self._protocolError(f"a message holds a lone surrogate: {message!r}")
                return
            try:
                protocol.dataReceived(data)
            except BaseException:
                self.log.failure("The protocol's dataReceived raised")
                self.loseConnection()

    def _flush(self) -> None:
        self._cancelFlush()
        if self._outgoing:
            messages, self._outgoing = self._outgoing, []
            self._link.sendMessages(messages)

    def _cancelFlush(self) -> None:
        call, self._flushCall = self._flushCall, None
        if call is not None and call.active():
            call.cancel()


class _WebSocketClientProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    """
    The websocket under one session: hands text messages (SockJS frames) to the link.
    """

    factory: _WebSocketClientFactory

    def onOpen(self) -> None:
        self.factory.link.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        transport = self.factory.link.transport
        if isBinary:
            transport._protocolError("a binary websocket message")
        else:
            transport._frameReceived(payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.link.closed(wasClean, code, reason)


class _WebSocketClientFactory(WebSocketClientFactory):  # type: ignore[misc]
    """
    Builds the websocket of one session.
    """

    protocol = _WebSocketClientProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(self, link: _WebSocketLink, url: str, reactor: Any) -> None:
        super().__init__(url, reactor=reactor)
        self.link = link
        # No timers of Autobahn's own: they would run on the global reactor.
        self.setProtocolOptions(
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            serverConnectionDropTimeout=0,
            autoPingInterval=0,
        )


class _WebSocketLink:
    """
    A session carried by one websocket: frames in, JSON arrays of messages out.
    """

    def __init__(
        self, transport: SockJSClientTransport, reactor: Any, url: str, endpoint: Any
    ) -> None:
        self.transport = transport
        self._reactor = reactor
        self._url = url
        self._endpoint = endpoint
        self._connecting: Optional[Deferred[Any]] = None
        self._websocket: Optional[_WebSocketClientProtocol] = None
        self._closing = False

    def start(self) -> None:
        factory = _WebSocketClientFactory(self, self._url, self._reactor)
        d = self._endpoint.connect(factory)
        self._connecting = d
        d.addCallbacks(self._connected, self._connectFailed)

    def _connected(self, websocket: _WebSocketClientProtocol) -> None:
        self._connecting = None
        self._websocket = websocket

    def _connectFailed(self, reason: Failure) -> None:
        self._connecting = None
        self.transport._linkLost(reason)

    def opened(self, websocket: _WebSocketClientProtocol) -> None:
        self._websocket = websocket
        if self._closing:
            websocket.sendClose(1000)

    def closed(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        if wasClean:
            self.transport._linkLost(Failure(ConnectionDone()))
        else:
            self.transport._linkLost(
                Failure(ConnectionLost(reason or "websocket closed uncleanly"))
            )

    def sendMessages(self, messages: list[str]) -> None:
        websocket = self._websocket
        if websocket is not None and websocket.state == websocket.STATE_OPEN:
            websocket.sendMessage(json.dumps(messages).encode("ascii"))

    def loseConnection(self) -> None:
        self._closing = True
        websocket = self._websocket
        if websocket is not None and websocket.state == websocket.STATE_OPEN:
            websocket.sendClose(1000)

    serverClosed = loseConnection

    def abortConnection(self) -> None:
        self._closing = True
        if self._connecting is not None:
            self._connecting.cancel()
        elif self._websocket is not None:
            self._websocket.dropConnection(abort=True)


@implementer(IBodyProducer)
class _BytesProducer:
    """
    A request body that is all there at once.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _BodyReader(Protocol):
    """
    Reads a response body.  C{done} fires once the response is done with (so that a
    persistent connection is back in its pool by then), or once L{stop} closed the
    connection.
    """

    def __init__(self) -> None:
        self.done: Deferred[bytes] = Deferred()
        self.stopped = False

    def stop(self) -> None:
        """
        Stop reading: close the connection; C{done} fails once it is closed.
        """
        self.stopped = True
        transport: Any = self.transport
        if transport is not None:
            transport.stopProducing()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if reason.check(ResponseDone, PotentialDataLoss) and not self.stopped:
            self.bodyDone()
        else:
            self.done.errback(reason)

    def bodyDone(self) -> None:
        """
        The whole body arrived.
        """


class _BodyCollector(_BodyReader):
    """
    Reads a whole response body; C{done} fires with it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self._parts.append(data)

    def bodyDone(self) -> None:
        self.done.callback(b"".join(self._parts))


class _FrameReader(_BodyReader):
    """
    Reads the frames of an xhr / xhr_streaming response, one a line, as they arrive.
    """

    def __init__(self, transport: SockJSClientTransport, skipPrelude: bool) -> None:
        super().__init__()
        self._sink = transport
        self._skipPrelude = skipPrelude
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if self.stopped:
                return
            if self._skipPrelude:
                self._skipPrelude = False
                if line == _PRELUDE:
                    continue
            try:
                frame = line.decode("utf-8")
            except UnicodeDecodeError:
                self._sink._protocolError("a frame is not UTF-8")
                return
            self._sink._frameReceived(frame)

    def bodyDone(self) -> None:
        if self._buffer:
            self.done.errback(Failure(ConnectionLost("the response ended inside a frame")))
        else:
            self.done.callback(b"")


_RUNNING, _CLIENT_CLOSE, _SERVER_CLOSE, _ABORT = range(4)


class _HTTPLink:
    """
    A session carried by HTTP requests: a receiving request (polling or streaming),
    renewed until the session ends, and C{xhr_send} requests, one at a time, each
    carrying every message written while the one before was under way.
    """

    def __init__(
        self,
        transport: SockJSClientTransport,
        agent: IAgent,
        pool: Optional[HTTPConnectionPool],
        url: str,
        transportName: str,
    ) -> None:
        self._transport = transport
        self._agent = agent
        self._pool = pool
        receiver = _HTTP_RECEIVERS[transportName]
        self._receiveURL = f"{url}/{receiver}".encode("ascii")
        self._sendURL = f"{url}/xhr_send".encode("ascii")
        self._streaming = receiver == "xhr_streaming"
        self._receiving: Optional[Deferred[bytes]] = None
        self._reader: Optional[_BodyReader] = None
        self._receiveStopped = False
        self._sending: Optional[Deferred[bytes]] = None
        self._queue: list[str] = []
        self._mode = _RUNNING
        self._failure: Optional[Failure] = None
        self._reported = False

    def start(self) -> None:
        self._receive()

    # receiving

    def _receive(self) -> None:
        d = self._agent.request(b"POST", self._receiveURL)
        self._receiving = d  # type: ignore[assignment]
        d.addCallback(self._gotReceiveResponse)
        d.addBoth(self._received)

    def _gotReceiveResponse(self, response: IResponse) -> Deferred[bytes]:
        reader: _BodyReader
        if response.code == 200:
            reader = _FrameReader(self._transport, self._streaming)
        else:
            reader = _BodyCollector()
            reader.done.addCallback(self._badStatus, self._receiveURL, response.code)
        self._reader = reader
        response.deliverBody(reader)
        return reader.done

    def _received(self, result: object) -> None:
        self._receiving = None
        self._reader = None
        running = self._mode == _RUNNING or (
            self._mode == _CLIENT_CLOSE and not self._receiveStopped
        )
        if isinstance(result, Failure):
            if running:
                self._fail(result)
        elif running:
            self._receive()
        self._maybeDone()

    def _stopReceiving(self) -> None:
        self._receiveStopped = True
        if self._reader is not None:
            # Wait for the connection to close: done fails then.
            self._reader.stop()
        elif self._receiving is not None:
            self._receiving.cancel()

    # sending

    def sendMessages(self, messages: list[str]) -> None:
        if self._mode not in (_RUNNING, _CLIENT_CLOSE):
            return
        self._queue.extend(messages)
        self._sendNext()

    def _sendNext(self) -> None:
        if self._sending is not None or not self._queue:
            return
        body = json.dumps(self._queue).encode("ascii")
        self._queue = []
        headers = Headers({b"Content-Type": [b"text/plain;charset=UTF-8"]})
        d = self._agent.request(b"POST", self._sendURL, headers, _BytesProducer(body))
        self._sending = d  # type: ignore[assignment]
        d.addCallback(self._gotSendResponse)
        d.addBoth(self._sent)

    def _gotSendResponse(self, response: IResponse) -> Deferred[bytes]:
        collector = _BodyCollector()
        if response.code != 204:
            collector.done.addCallback(self._badStatus, self._sendURL, response.code)
        response.deliverBody(collector)
        return collector.done

    def _sent(self, result: object) -> None:
        self._sending = None
        if self._mode in (_RUNNING, _CLIENT_CLOSE):
            if isinstance(result, Failure):
                self._fail(result)
            else:
                self._sendNext()
                if self._mode == _CLIENT_CLOSE and self._sending is None:
                    self._stopReceiving()
        self._maybeDone()

    # closing

    def loseConnection(self) -> None:
        """
        The client closes: send what is written, then stop receiving.
        """
        if self._mode != _RUNNING:
            return
        self._mode = _CLIENT_CLOSE
        if self._sending is None:
            self._stopReceiving()

    def serverClosed(self) -> None:
        """
        The server closed the session: its receiving response ends by itself.
        """
        if self._mode in (_RUNNING, _CLIENT_CLOSE):
            self._mode = _SERVER_CLOSE
            self._queue = []
        self._maybeDone()

    def abortConnection(self) -> None:
        """
        Stop now.  A send under way is let finish: the server answers it at once.
        """
        if self._mode != _ABORT:
            self._mode = _ABORT
            self._queue = []
            self._stopReceiving()
        self._maybeDone()

    def _fail(self, reason: Failure) -> None:
        if self._failure is None:
            self._failure = reason
        self.abortConnection()

    def _badStatus(self, body: bytes, url: bytes, code: int) -> bytes:
        text = body.decode("utf-8", "replace").strip()
        if len(text) > 80:
            text = text[:80] + "..."
        raise _HTTPStatusError(f"POST {url.decode('ascii')} answered {code}: {text!r}")

    def _maybeDone(self) -> None:
        if self._mode == _RUNNING or self._reported:
            return
        if self._receiving is not None or self._sending is not None:
            return
        self._reported = True
        reason = self._failure or Failure(ConnectionDone())
        closing: Deferred[None] = (
            self._pool.closeCachedConnections() if self._pool is not None else succeed(None)
        )
        closing.addBoth(lambda _: self._transport._linkLost(reason))


class SockJSClient:
    """
    A SockJS client on a real reactor: connects ordinary protocols to a SockJS endpoint
    over the websocket, xhr-streaming or xhr-polling transport.

    Each message is one C{transport.write(bytes)} on the client and one
    C{dataReceived(bytes)} on the server, and the other way round, in UTF-8. Heartbeats
    are handled for you. A close frame from the server is kept on the transport
    (L{SockJSClientTransport.closeCode}, L{SockJSClientTransport.closeReason}) and ends
    the connection.

    :ivar baseURL: The endpoint's URL, e.g. C{"http://127.0.0.1:8081/echo"}.
    :ivar transport: The SockJS transport it uses.
    """

    def __init__(
        self,
        reactor: Any,
        baseURL: str,
        transport: str = "websocket",
        agent: Optional[IAgent] = None,
    ) -> None:
        """
        :param reactor: Provides TCP connections and time.
        :param baseURL: The endpoint's C{http://} URL.
        :param transport: C{"websocket"}, C{"xhr-streaming"} or C{"xhr-polling"}.
        :param agent: The agent that makes the HTTP transports' requests. By default
            each session gets its own L{Agent} and connection pool, whose connections
            are all closed before its protocol's C{connectionLost}.
        :raise ValueError: An unknown transport, or not an C{http://} URL.
        """
        if transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}"
            )
        parts = urlsplit(baseURL)
        if (
            parts.scheme != "http"
            or not parts.hostname
            or parts.query
            or parts.fragment
            or not baseURL.isascii()
        ):
            raise ValueError(f"baseURL must be an http:// URL without query, not {baseURL!r}")
        self._reactor = reactor
        self._agent = agent
        self._host = parts.hostname
        self._port = parts.port or 80
        self.baseURL = baseURL.rstrip("/")
        self.transport = transport

    def __repr__(self) -> str:
        return f"<SockJSClient {self.transport} {self.baseURL}>"

    def connect(self, protocol: IProtocol) -> Deferred[IProtocol]:
        """
        Open a new session (with random server and session ids) and connect
        C{protocol} to it.

        :return: A L{Deferred} firing with C{protocol} once the server's open frame
            arrived and C{protocol.makeConnection} was called; or failing with
            L{ConnectError} if the session could not be opened (an HTTP error, a
            refused websocket, a close frame instead of the open frame), or with the
            error of the TCP connection.  Cancel it to give up.
        """
        serverId = "%03d" % secrets.randbelow(1000)
        sessionId = uuid.uuid4().hex
        url = f"{self.baseURL}/{serverId}/{sessionId}"
        peer = HostnameAddress(self._host.encode("ascii"), self._port)
        transport = SockJSClientTransport(
            self._reactor, protocol, url, sessionId, self.transport, peer
        )
        link: Union[_WebSocketLink, _HTTPLink]
        if self.transport == "websocket":
            endpoint = HostnameEndpoint(self._reactor, self._host, self._port)
            link = _WebSocketLink(
                transport, self._reactor, "ws" + url[4:] + "/websocket", endpoint
            )
        else:
            agent = self._agent
            pool = None
            if agent is None:
                pool = HTTPConnectionPool(self._reactor, persistent=True)
                agent = Agent(self._reactor, pool=pool)
            link = _HTTPLink(transport, agent, pool, url, self.transport)
        return transport._start(link)
