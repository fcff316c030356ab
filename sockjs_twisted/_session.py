"""
One SockJS session: its state machine, its outgoing queue, its one timer (heartbeat while a
receiving connection is attached, disconnect timeout while none is), the sink attached now,
and the user's protocol, to which the session is the transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import attr
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from ._framing import HEARTBEAT_FRAME, OPEN_FRAME, closeFrame
from .interfaces import ISessionSink, ISockJSTransport

if TYPE_CHECKING:
    from ._registry import SessionFactory

__all__ = ["CLOSED", "CLOSING", "CONNECTING", "OPEN", "ConnectionInfo", "Session"]

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

GO_AWAY = (3000, "Go away!")
ANOTHER_CONNECTION = (2010, "Another connection still open")
INTERRUPTED = (1002, "Connection interrupted")
INTERNAL_ERROR = (1011, "Internal error")
QUEUE_OVERFLOW = (1013, "Outgoing queue over limit")
SHUTDOWN = (1001, "Server shutting down")

_anotherConnectionFrame = closeFrame(*ANOTHER_CONNECTION)

# What a queued message costs beyond its characters (the str object and its list slot),
# so that the queue limits bound memory, not only text.
_ITEM_OVERHEAD = 64


# Request headers a connection exposes (sockjs-node's list, plus origin and the other
# X-Forwarded-* headers).  Cookies are never among them.
EXPOSED_HEADERS = frozenset(
    [
        "referer",
        "x-client-ip",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-cluster-client-ip",
        "via",
        "x-real-ip",
        "x-ssl",
        "dnt",
        "host",
        "user-agent",
        "accept-language",
        "origin",
    ]
)


def mountPath(url: str, framed: bool = True) -> str:
    """
    The path an endpoint is mounted at, from the URL of a request it routed to a session:
    what precedes C{/<server>/<session>/<transport>} (C{/websocket} for the raw
    websocket).  C{""} at the root of a site.
    """
    segments = url.split("?", 1)[0].split("/")
    return "/".join(segments[: -3 if framed else -1])


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ConnectionInfo:
    """
    What a session keeps of the request that attached its latest receiving connection.

    :ivar peer: The client's address.
    :ivar host: The server's address.
    :ivar headers: Request headers, lower-case names (the session exposes only those in
        L{EXPOSED_HEADERS}: never cookies).
    :ivar url: The request's path and query.
    """

    peer: IAddress
    host: IAddress
    headers: dict[str, str]
    url: str


@implementer(ISockJSTransport, IPushProducer)
class Session:
    """
    One SockJS session, and the transport of the user's protocol that serves it.

    Messages written by the protocol are quoted at once (so a bad write fails at the call)
    and queued; the queue is flushed as one C{a[...]} frame per reactor turn, to whichever
    sink is attached.
    """

    __slots__ = (
        "_factory",
        "sessionId",
        "readyState",
        "protocol",
        "_protocol",
        "_queue",
        "_queuedBytes",
        "_sink",
        "_timer",
        "_close",
        "_closeFrame",
        "_dirty",
        "_registered",
        "_framed",
        "_info",
        "_producer",
        "_streamingProducer",
        "_producerPaused",
        "__weakref__",
    )

    def __init__(
        self,
        factory: SessionFactory,
        sessionId: Optional[str],
        protocol: IProtocol,
        registered: bool,
        framed: bool = True,
    ) -> None:
        """
        :param factory: The endpoint's session factory: clock, options, flushing, logging.
        :param sessionId: The id from the URL.
        :param protocol: The user's protocol, not yet connected.
        :param registered: C{True} for HTTP sessions, which live in the factory's map and
            outlive their receiving connections; C{False} for websocket sessions, which
            live and die with their one connection.
        :param framed: C{False} for the raw C{/websocket} endpoint: no SockJS framing,
            no heartbeats.
        """
        self._factory = factory
        self.sessionId = sessionId
        self.readyState = CONNECTING
        self.protocol = ""
        self._protocol: Optional[IProtocol] = protocol
        self._queue: list[str] = []
        self._queuedBytes = 0
        self._sink: Optional[ISessionSink] = None
        self._timer: Optional[IDelayedCall] = None
        self._close: Optional[tuple[int, str]] = None
        self._closeFrame = ""
        self._dirty = False
        self._registered = registered
        self._framed = framed
        self._info: Optional[ConnectionInfo] = None
        self._producer: Any = None
        self._streamingProducer = False
        self._producerPaused = False

    def __repr__(self) -> str:
        return f"<Session {self.sessionId!r} readyState={self.readyState}>"

    # -- sockjs-node's connection properties ------------------------------------------

    @property
    def connected(self) -> bool:
        """
        Is the session open (as a TCP transport's C{connected})?
        """
        return self.readyState == OPEN

    @property
    def disconnecting(self) -> bool:
        """
        Is the session closing or closed (as a TCP transport's C{disconnecting}, which
        C{LineReceiver} and friends read)?
        """
        return self.readyState >= CLOSING

    @property
    def prefix(self) -> str:
        """
        The endpoint's C{prefix} option or, when none was given, the path the endpoint is
        mounted at, as the latest receiving request's URL shows it.
        """
        prefix = self._factory.options.prefix
        if prefix or self._info is None:
            return prefix
        return mountPath(self._info.url, self._framed)

    @property
    def url(self) -> Optional[str]:
        return self._info.url if self._info else None

    @property
    def pathname(self) -> Optional[str]:
        url = self.url
        return url.split("?", 1)[0] if url is not None else None

    @property
    def headers(self) -> dict[str, str]:
        if self._info is None:
            return {}
        return {k: v for k, v in self._info.headers.items() if k in EXPOSED_HEADERS}

    @property
    def remoteAddress(self) -> Optional[str]:
        return getattr(self.getPeer(), "host", None)

    @property
    def remotePort(self) -> Optional[int]:
        return getattr(self.getPeer(), "port", None)

    def getPeer(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The client's address, as seen by the latest receiving request.
        """
        return self._info.peer if self._info else None

    def getHost(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The server's address, as seen by the latest receiving request.
        """
        return self._info.host if self._info else None

    # -- ITransport, for the user's protocol ------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send one message.

        :param data: UTF-8 text.
        :raise TypeError: C{data} is not bytes.
        :raise ValueError: C{data} is not UTF-8.
        """
        if self.readyState != OPEN:
            return
        quoted = self._factory.quote(data, self._framed)
        self._queue.append(quoted)
        self._queuedBytes += len(quoted) + _ITEM_OVERHEAD
        if not self._dirty:
            self._dirty = True
            self._factory.scheduleFlush(self)
        if self._queuedBytes > self._factory.highWater:
            self._queueGrew()

    def writeSequence(self, data: list[bytes]) -> None:  # type: ignore[override]
        """
        Send the concatenation of C{data} as one message.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the session with C{3000 "Go away!"}.
        """
        self.close(*GO_AWAY)

    def abortConnection(self) -> None:
        """
        Close the session at once; with SockJS there is nothing more abrupt than a close
        frame, so this is L{loseConnection}.
        """
        self.close(*GO_AWAY)

    def close(self, code: int = GO_AWAY[0], reason: str = GO_AWAY[1]) -> None:
        """
        Close the session with a close frame carrying C{code} and C{reason}.  Messages
        already written are delivered first.
        """
        if self.readyState > OPEN:
            return
        self.readyState = CLOSING
        self._close = (code, reason)
        self._closeFrame = closeFrame(code, reason)
        self._pump()

    # -- IConsumer ---------------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer, paused while the outgoing queue is past the high-water mark.
        """
        if self._producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer "
                f"{self._producer!r} was never unregistered."
            )
        if self.readyState > OPEN:
            producer.stopProducing()
            return
        self._producer = producer
        self._streamingProducer = streaming
        self._producerPaused = False
        if not streaming:
            producer.resumeProducing()
        elif self._queuedBytes > self._factory.highWater:
            self._queueGrew()

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self._producer = None

    def _queueGrew(self) -> None:
        if self._queuedBytes > self._factory.maxQueue:
            self._factory.logMessage(
                "error",
                f"SockJS session {self.sessionId} closed: its outgoing queue passed "
                f"{self._factory.maxQueue} bytes",
            )
            self._factory.observer.queueOverflow()
            self._queue = []
            self._queuedBytes = 0
            # Not from inside the protocol's own write(): Twisted transports never call
            # connectionLost re-entrantly.  Writes are dropped from now on.
            self.readyState = CLOSING
            self._factory.clock.callLater(
                0, self.fail, QUEUE_OVERFLOW, "outgoing queue over limit"
            )
            return
        if self._producer is not None and self._streamingProducer and not self._producerPaused:
            self._producerPaused = True
            self._factory.observer.producerPaused()
            self._producer.pauseProducing()

    def _queueDrained(self) -> None:
        producer = self._producer
        if producer is None:
            return
        if self._streamingProducer:
            if self._producerPaused:
                self._producerPaused = False
                producer.resumeProducing()
        else:
            producer.resumeProducing()

    # -- IPushProducer: the session follows its sink ------------------------------------

    def pauseProducing(self) -> None:
        """
        The sink cannot take more: keep queueing.
        """

    def resumeProducing(self) -> None:
        """
        The sink can take more: deliver what is queued.
        """
        self._pump()

    def stopProducing(self) -> None:
        """
        The sink is going away; L{detach} says how.
        """

    # -- for transports ---------------------------------------------------------------

    def attach(self, sink: ISessionSink, info: ConnectionInfo) -> None:
        """
        A receiving connection arrived.  It gets what is pending (the open frame, queued
        messages, the close frame), or C{2010 "Another connection still open"} when
        another one is attached already.
        """
        if self._sink is not None:
            sink.writeFrame(_anotherConnectionFrame)
            sink.finishSink(*ANOTHER_CONNECTION)
            return
        if self.readyState == CLOSED:
            # Serve the close frame until the disconnect timer reaps the session.
            close = self._close or GO_AWAY
            sink.writeFrame(self._closeFrame or closeFrame(*close))
            sink.finishSink(*close)
            return
        if self.readyState <= OPEN:
            self._info = info
            self.protocol = sink.protocolName
        self._cancelTimer()
        self._factory.observer.attached(self)
        self._sink = sink
        sink.bindSession(self)
        if self.readyState == CONNECTING:
            self.readyState = OPEN
            sink.writeFrame(OPEN_FRAME)
            self._connectProtocol()
        else:
            self._pump()
        if self._sink is sink and self.readyState == OPEN:
            self._startHeartbeat()

    def detach(self, sink: ISessionSink, aborted: bool) -> None:
        """
        The receiving connection C{sink} ended: it finished its response (C{aborted} is
        false), or the client went away (true).
        """
        if sink is not self._sink:
            return
        self._sink = None
        self._cancelTimer()
        if not self._registered:
            if self.readyState <= CLOSING:
                self.readyState = CLOSED
                reason = (
                    ConnectionLost("websocket closed uncleanly") if aborted else ConnectionDone()
                )
                self._lost(Failure(reason))
            return
        if aborted and self.readyState == OPEN:
            self.fail(INTERRUPTED, "receiving connection interrupted")
        self._factory.observer.detached(self)
        self._startDisconnect()

    def messagesReceived(self, messages: list[bytes]) -> None:
        """
        Deliver messages from the client, one C{dataReceived} each.
        """
        self._factory.observer.received(messages)
        for message in messages:
            protocol = self._protocol
            if self.readyState != OPEN or protocol is None:
                return
            try:
                protocol.dataReceived(message)
            except BaseException:
                self._userCodeFailed("dataReceived")

    def flush(self) -> None:
        """
        Called once per reactor turn by the factory after a write: deliver the queue.
        """
        self._dirty = False
        self._pump()

    def shutdown(self, code: int, reason: str) -> None:
        """
        The server is stopping: close, and let the protocol go now rather than when the
        client comes back.
        """
        self.close(code, reason)
        if self.readyState == CLOSING:
            self.readyState = CLOSED
            self._lost(Failure(ConnectionDone("server shutting down")))
        # Nobody comes back to a stopped server: no close frame to keep serving.
        self._cancelTimer()
        self._factory.discard(self)

    # -- internals ----------------------------------------------------------------------

    def _pump(self) -> None:
        sink = self._sink
        if sink is None or sink.sinkPaused:
            return
        if self._queue:
            queue = self._queue
            self._queue = []
            self._queuedBytes = 0
            sink.writeMessages(queue)
            self._factory.observer.sent(queue)
            self._queueDrained()
            if self._sink is not sink or sink.sinkPaused:
                return
        if self._close is not None:
            self._sink = None
            self._cancelTimer()
            sink.writeFrame(self._closeFrame)
            sink.finishSink(*self._close)
            if self.readyState == CLOSING:
                self.readyState = CLOSED
                self._lost(Failure(ConnectionDone()))
            if self._registered:
                self._startDisconnect()

    def fail(self, close: tuple[int, str], why: str) -> None:
        """
        End the session now, for a reason that is nobody's clean close: send the close
        frame C{close} if a sink is attached, and give the protocol
        C{connectionLost(ConnectionLost(why))}.
        """
        self._close = close
        self._closeFrame = closeFrame(*close)
        sink = self._sink
        if sink is not None:
            self._sink = None
            self._cancelTimer()
            sink.writeFrame(self._closeFrame)
            sink.finishSink(*close)
            if self._registered:
                self._startDisconnect()
        if self.readyState <= CLOSING:
            self.readyState = CLOSED
            self._lost(Failure(ConnectionLost(why)))

    def _connectProtocol(self) -> None:
        protocol = self._protocol
        assert protocol is not None
        try:
            protocol.makeConnection(self)
        except BaseException:
            self._userCodeFailed("makeConnection")

    def _userCodeFailed(self, where: str) -> None:
        self._factory.log.failure(
            "SockJS session {sessionId}: the protocol's {where} raised",
            sessionId=self.sessionId,
            where=where,
        )
        self.close(*INTERNAL_ERROR)

    def _lost(self, reason: Failure) -> None:
        protocol = self._protocol
        self._protocol = None
        producer = self._producer
        self._producer = None
        if producer is not None:
            producer.stopProducing()
        self._factory.sessionLost(self)
        if protocol is None:
            return
        try:
            protocol.connectionLost(reason)
        except BaseException:
            self._factory.log.failure(
                "SockJS session {sessionId}: the protocol's connectionLost raised",
                sessionId=self.sessionId,
            )

    def _startHeartbeat(self) -> None:
        if self._framed:
            self._timer = self._factory.clock.callLater(
                self._factory.heartbeatDelay, self._heartbeat
            )

    def _heartbeat(self) -> None:
        self._timer = None
        sink = self._sink
        if sink is None:
            return
        if not sink.sinkPaused:
            sink.writeFrame(HEARTBEAT_FRAME)
        if self._sink is sink:
            self._startHeartbeat()

    def _startDisconnect(self) -> None:
        self._timer = self._factory.clock.callLater(self._factory.disconnectDelay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._factory.discard(self)
        self._queue = []
        self._queuedBytes = 0
        if self.readyState <= CLOSING:
            self.readyState = CLOSED
            self._lost(Failure(ConnectionLost("SockJS session timed out")))

    def _cancelTimer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
