"""
One SockJS session: its state machine, its outgoing queue, its incoming backlog while the
protocol pauses reading, its one timer (heartbeat while a receiving connection is
attached, disconnect timeout while none is), the sink attached now, and the user's
protocol.

The protocol does not see the session: its transport is a L{SockJSTransport}, which has
the transport API only.  Every way a session ends passes through L{Session._end}.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Optional, Union

import attr
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from ._deadline import Timer, waitRest
from ._framing import HEARTBEAT_FRAME, OPEN_FRAME, IncompleteUTF8, closeFrame
from .interfaces import ISessionSink, ISockJSTransport

if TYPE_CHECKING:
    from ._registry import SessionRegistry

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "ConnectionInfo",
    "Session",
    "SockJSTransport",
]

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

# What a session holds from its client while nothing is held: one empty deque shared by
# all sessions (it can hold nothing: maxlen 0); Session._hold makes the session its own.
_NOTHING_HELD: deque[bytes] = deque(maxlen=0)

GO_AWAY = (3000, "Go away!")
ANOTHER_CONNECTION = (2010, "Another connection still open")
INTERRUPTED = (1002, "Connection interrupted")
INTERNAL_ERROR = (1011, "Internal error")
QUEUE_OVERFLOW = (1013, "Outgoing queue over limit")
SHUTDOWN = (1001, "Server shutting down")

_anotherConnectionFrame = closeFrame(*ANOTHER_CONNECTION)

# Framed messages are joined into one string every _JOIN_EVERY writes, so that a queue
# of many small messages costs about its characters, not a Python object per message.
_JOIN_EVERY = 64

# A raw websocket sends each message as its own websocket message, so its queue keeps
# one str per message: what that object and its list slot cost beyond the characters.
_RAW_ITEM_OVERHEAD = 57


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
        C{EXPOSED_HEADERS}: never cookies).
    :ivar url: The request's path and query.
    """

    peer: IAddress
    host: IAddress
    headers: dict[str, str]
    url: str


@implementer(ISockJSTransport)
class SockJSTransport:
    """
    The transport of a protocol served over SockJS: one session, seen through the
    transport API only.

    C{write} sends one message; C{pauseProducing} and C{resumeProducing} are about what
    the client sends (as on a TCP transport, they stop and restart C{dataReceived}); a
    producer registered with C{registerProducer} is paused while the client does not
    read.
    """

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    def __repr__(self) -> str:
        session = self._session
        return (
            f"<SockJSTransport {session.sessionId!r} {session.transportName or '-'} "
            f"readyState={session.readyState}>"
        )

    # -- sockjs-node's connection properties ------------------------------------------

    @property
    def sessionId(self) -> Optional[str]:
        return self._session.sessionId

    @property
    def readyState(self) -> int:
        return self._session.readyState

    @property
    def transportName(self) -> str:
        return self._session.transportName

    @property
    def protocol(self) -> Optional[IProtocol]:
        """
        The protocol this transport carries, as on Twisted's own transports (C{None} once
        it has had its C{connectionLost}).
        """
        return self._session.protocol

    @property
    def connected(self) -> bool:
        """
        Is the session open (as a TCP transport's C{connected})?
        """
        return self._session.readyState == OPEN

    @property
    def disconnecting(self) -> bool:
        """
        Is the session closing or closed (as a TCP transport's C{disconnecting}, which
        C{LineReceiver} and friends read)?
        """
        return self._session.readyState >= CLOSING

    @property
    def prefix(self) -> str:
        return self._session.prefix

    @property
    def url(self) -> Optional[str]:
        return self._session.url

    @property
    def pathname(self) -> Optional[str]:
        url = self._session.url
        return url.split("?", 1)[0] if url is not None else None

    @property
    def headers(self) -> dict[str, str]:
        return self._session.headers

    @property
    def remoteAddress(self) -> Optional[str]:
        return getattr(self._session.getPeer(), "host", None)

    @property
    def remotePort(self) -> Optional[int]:
        return getattr(self._session.getPeer(), "port", None)

    def getPeer(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The client's address, as seen by the latest receiving request.
        """
        return self._session.getPeer()

    def getHost(self) -> Optional[IAddress]:  # type: ignore[override]
        """
        The server's address, as seen by the latest receiving request.
        """
        return self._session.getHost()

    # -- ITransport ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send one message.  A character cut at the end of C{data} is held back and sent
        with the next write, so chunked writers (C{FileSender}) work.

        :param data: UTF-8 text; lone surrogates (UTF-8 with C{'surrogatepass'}) are
            sent as C{\\\\udXXX} escapes, except on raw websockets.
        :raise TypeError: C{data} is not bytes.
        :raise ValueError: C{data} holds bytes that can never become UTF-8.
        """
        self._session.write(data)

    def writeSequence(self, data: list[bytes]) -> None:  # type: ignore[override]
        """
        Send the concatenation of C{data} as one message.
        """
        self._session.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the session with C{3000 "Go away!"}, once what was written is delivered.
        """
        self._session.close(*GO_AWAY)

    def abortConnection(self) -> None:
        """
        Close the session at once: what is queued is dropped, the client gets the close
        frame where a receiving connection is attached, and the protocol gets
        C{connectionLost} with C{ConnectionAborted} before this returns.
        """
        self._session.abort()

    def close(self, code: int = GO_AWAY[0], reason: str = GO_AWAY[1]) -> None:
        """
        Close the session with a close frame carrying C{code} and C{reason}, once what
        was written is delivered.
        """
        self._session.close(code, reason)

    # -- IConsumer ----------------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer, paused while the outgoing queue is past the high-water mark.
        A producer registered on a closed session is stopped at once.

        :raise RuntimeError: Another producer is registered.
        """
        self._session.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self._session.unregisterProducer()

    # -- IPushProducer: what the client sends ---------------------------------------

    def pauseProducing(self) -> None:
        """
        Stop delivering messages to C{dataReceived}.  On a websocket the socket is not
        read; an C{xhr_send} or C{jsonp_send} is answered only once its messages are
        delivered, so the client (which keeps one send in flight) stops sending.
        """
        self._session.pauseReading()

    def resumeProducing(self) -> None:
        """
        Deliver the messages that waited, in order, from the reactor in the next turn
        (never from inside this call), and those that follow.
        """
        self._session.resumeReading()

    def stopProducing(self) -> None:
        """
        Close the session, as C{stopProducing} on a TCP transport does.
        """
        self._session.close(*GO_AWAY)


@implementer(IPushProducer)
class Session:
    """
    One SockJS session: the machinery behind the L{SockJSTransport} of the user's
    protocol.

    Messages written by the protocol are quoted at once (so a bad write fails at the call)
    and queued; the queue is flushed as one C{a[...]} frame per reactor turn, to whichever
    sink is attached.  The session is the push producer its sinks drive: a sink calls
    L{resumeProducing} when it can take frames again.
    """

    __slots__ = (
        "_factory",
        "sessionId",
        "readyState",
        "transportName",
        "transport",
        "_protocol",
        "_queue",
        "_unjoined",
        "_queuedCount",
        "_queuedBytes",
        "_tail",
        "_sink",
        "_timer",
        "_expireAt",
        "_close",
        "_closeFrame",
        "_dirty",
        "_registered",
        "_reaped",
        "_framed",
        "_info",
        "_producer",
        "_streamingProducer",
        "_producerPaused",
        "_pendingEnd",
        "_incoming",
        "_incomingBytes",
        "_readPaused",
        "_delivering",
        "_readWaiters",
        "_drainCall",
        "__weakref__",
    )

    def __init__(
        self,
        factory: SessionRegistry,
        sessionId: Optional[str],
        protocol: IProtocol,
        registered: bool,
        framed: bool = True,
    ) -> None:
        """
        :param factory: The endpoint's session registry: clock, options, flushing,
            logging.
        :param sessionId: The id from the URL.
        :param protocol: The user's protocol, not yet connected.
        :param registered: C{True} for HTTP sessions, which live in the registry and
            outlive their receiving connections; C{False} for websocket sessions, which
            live and die with their one connection.
        :param framed: C{False} for the raw C{/websocket} endpoint: no SockJS framing,
            no heartbeats.
        """
        self._factory = factory
        self.sessionId = sessionId
        self.readyState = CONNECTING
        self.transportName = ""
        self.transport = SockJSTransport(self)
        self._protocol: Optional[IProtocol] = protocol
        self._queue: list[str] = []
        self._unjoined = 0
        self._queuedCount = 0
        self._queuedBytes = 0
        self._tail = b""
        self._sink: Optional[ISessionSink] = None
        self._timer: Optional[Timer] = None
        # When _timer is the disconnect timer: the instant the session expires (the
        # timer may fire earlier and move itself there).
        self._expireAt: Optional[float] = None
        self._close: Optional[tuple[int, str]] = None
        self._closeFrame = ""
        self._dirty = False
        self._registered = registered
        self._reaped = False
        self._framed = framed
        self._info: Optional[ConnectionInfo] = None
        self._producer: Any = None
        self._streamingProducer = False
        self._producerPaused = False
        self._pendingEnd: Optional[tuple[tuple[int, str], Failure]] = None
        # The messages held while the protocol paused reading: no deque (some 600 bytes)
        # until the first is held.
        self._incoming: deque[bytes] = _NOTHING_HELD
        self._incomingBytes = 0
        self._readPaused = False
        self._delivering = False
        self._readWaiters: list[Deferred[None]] = []
        self._drainCall: Optional[IDelayedCall] = None

    def __repr__(self) -> str:
        return f"<Session {self.sessionId!r} readyState={self.readyState}>"

    # -- what the transport reads -----------------------------------------------------

    @property
    def protocol(self) -> Optional[IProtocol]:
        """
        The user's protocol, until it has had its C{connectionLost}.
        """
        return self._protocol

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
    def headers(self) -> dict[str, str]:
        if self._info is None:
            return {}
        return {k: v for k, v in self._info.headers.items() if k in EXPOSED_HEADERS}

    def getPeer(self) -> Optional[IAddress]:
        return self._info.peer if self._info else None

    def getHost(self) -> Optional[IAddress]:
        return self._info.host if self._info else None

    @property
    def incomingBacklog(self) -> int:
        """
        Bytes of messages from the client that wait while the protocol paused reading.
        """
        return self._incomingBytes

    # -- outgoing: what the protocol writes ---------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Queue one message (see L{SockJSTransport.write}).
        """
        if self.readyState != OPEN:
            return
        if self._tail:
            if type(data) is not bytes:
                raise TypeError(
                    f"transport.write() takes bytes (one UTF-8 message), not {type(data).__name__}"
                )
            data = self._tail + data
            self._tail = b""
        try:
            quoted = self._factory.quote(data, self._framed)
        except IncompleteUTF8 as e:
            self._tail = data[e.start :]
            if e.start == 0:
                return
            quoted = self._factory.quote(data[: e.start], self._framed)
        queue = self._queue
        queue.append(quoted)
        self._queuedCount += 1
        if self._framed:
            self._queuedBytes += len(quoted) + 1
            self._unjoined += 1
            if self._unjoined >= _JOIN_EVERY:
                queue[-_JOIN_EVERY:] = [",".join(queue[-_JOIN_EVERY:])]
                self._unjoined = 0
        else:
            self._queuedBytes += len(quoted) + _RAW_ITEM_OVERHEAD
        if not self._dirty:
            self._dirty = True
            self._factory.scheduleFlush(self)
        if self._queuedBytes > self._factory.highWater:
            self._queueGrew()

    def close(self, code: int = GO_AWAY[0], reason: str = GO_AWAY[1]) -> None:
        """
        Close the session with a close frame carrying C{code} and C{reason}.  Messages
        already written are delivered first; the protocol gets C{connectionLost} with
        L{ConnectionDone} once the close frame is sent.
        """
        if self.readyState > OPEN:
            return
        self.readyState = CLOSING
        self._close = (code, reason)
        self._closeFrame = closeFrame(code, reason)
        self._pump()

    def abort(self) -> None:
        """
        End the session now, dropping what is queued (see
        L{SockJSTransport.abortConnection}).
        """
        self._end(Failure(ConnectionAborted()), self._close or GO_AWAY)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register the protocol's producer, paused while the outgoing queue is past the
        high-water mark; stopped at once if the session is closed.
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
        Forget the protocol's producer.
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
            self._dropQueue()
            # Not from inside the protocol's own write(): Twisted transports never call
            # connectionLost re-entrantly.  The flush this write scheduled ends the
            # session; writes are dropped from now on.
            self.readyState = CLOSING
            self._pendingEnd = (
                QUEUE_OVERFLOW,
                Failure(ConnectionLost("outgoing queue over limit")),
            )
            if not self._dirty:
                self._dirty = True
                self._factory.scheduleFlush(self)
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

    def _dropQueue(self) -> None:
        self._queue = []
        self._queuedCount = 0
        self._unjoined = 0
        self._queuedBytes = 0
        self._tail = b""

    # -- incoming: what the client sends -----------------------------------------------

    def messagesReceived(self, messages: list[bytes]) -> Optional[Deferred[None]]:
        """
        Deliver messages from the client, one C{dataReceived} each, in order.

        :return: C{None} when the session takes more at once; else a L{Deferred} that
            fires once the protocol resumes reading and every message is delivered (or
            the session ends).  Until then a websocket stops reading its socket, and an
            C{xhr_send} waits to answer.
        """
        self._factory.observer.received(messages)
        if self.readyState != OPEN:
            return None
        if self._readPaused or self._incoming or self._delivering:
            self._hold(messages)
            return self._readWaiter() if self._readPaused or not self._delivering else None
        protocol = self._protocol
        assert protocol is not None
        self._delivering = True
        try:
            for i, message in enumerate(messages):
                try:
                    protocol.dataReceived(message)
                except BaseException:
                    self._userCodeFailed("dataReceived")
                    return None
                if self.readyState != OPEN:
                    return None
                if self._readPaused:
                    self._hold(messages[i + 1 :])
                    return self._readWaiter()
        finally:
            self._delivering = False
        if self._incoming:
            # Held by a re-entrant call while we delivered.
            self._drain()
        return self._readWaiter() if self._readPaused else None

    def pauseReading(self) -> None:
        """
        The protocol paused its transport: hold what the client sends.
        """
        self._readPaused = True

    def resumeReading(self) -> None:
        """
        The protocol resumed its transport.  As on TCP, what waits is delivered from the
        reactor, in order, in the next turn: never from inside C{resumeProducing}.
        """
        if not self._readPaused:
            return
        self._readPaused = False
        if self._delivering:
            # The loop that is delivering goes on.
            return
        if self._incoming and self.readyState == OPEN:
            if self._drainCall is None:
                self._drainCall = self._factory.clock.callLater(0, self._drainHeld)
        else:
            self._releaseReaders()

    def _drainHeld(self) -> None:
        self._drainCall = None
        factory = self._factory
        factory.beginBatch()
        try:
            self._drain()
        finally:
            factory.endBatch()

    def _hold(self, messages: list[bytes]) -> None:
        if self._incoming is _NOTHING_HELD:
            self._incoming = deque()
        self._incoming.extend(messages)
        self._incomingBytes += sum(len(m) for m in messages)

    def _readWaiter(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self._readWaiters.append(waiter)
        return waiter

    def _drain(self) -> None:
        incoming = self._incoming
        self._delivering = True
        try:
            while incoming and not self._readPaused and self.readyState == OPEN:
                message = incoming.popleft()
                self._incomingBytes -= len(message)
                protocol = self._protocol
                assert protocol is not None
                try:
                    protocol.dataReceived(message)
                except BaseException:
                    self._userCodeFailed("dataReceived")
        finally:
            self._delivering = False
        if not self._readPaused or self.readyState != OPEN:
            self._releaseReaders()

    def _releaseReaders(self) -> None:
        if self.readyState != OPEN:
            self._incoming = _NOTHING_HELD
            self._incomingBytes = 0
            call = self._drainCall
            if call is not None:
                self._drainCall = None
                call.cancel()
        waiters = self._readWaiters
        self._readWaiters = []
        for waiter in waiters:
            waiter.callback(None)

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
            self.transportName = sink.protocolName
        # The disconnect timer is left scheduled: a poll that is answered at once
        # detaches before this returns, and only moves its deadline.
        self._factory.observer.attached(self)
        self._sink = sink
        sink.bindSession(self)
        if self.readyState == CONNECTING:
            self.readyState = OPEN
            sink.writeFrame(OPEN_FRAME)
            self._connectProtocol()
        else:
            self._pump()
        if self._sink is sink:
            self._cancelTimer()
            if self.readyState == OPEN:
                self._startHeartbeat()

    def detach(self, sink: ISessionSink, aborted: bool) -> None:
        """
        The receiving connection C{sink} ended: it finished its response (C{aborted} is
        false), or the client went away (true).
        """
        if sink is not self._sink:
            return
        self._sink = None
        if self._expireAt is None:
            self._cancelTimer()
        else:
            # The disconnect timer that attach left scheduled: it expires the session
            # when a new one would, moving itself there when it fires.
            factory = self._factory
            self._expireAt = factory.clock.seconds() + factory.disconnectDelay
        if not self._registered:
            self._end(
                Failure(
                    ConnectionLost("websocket closed uncleanly") if aborted else ConnectionDone()
                )
            )
        elif aborted and self.readyState == OPEN:
            self._end(Failure(ConnectionLost("receiving connection interrupted")), INTERRUPTED)
        else:
            self._factory.observer.detached(self)
            if self._timer is None:
                self._startDisconnect()

    def fail(self, close: tuple[int, str], why: Union[str, Failure]) -> None:
        """
        End the session now, for a reason that is nobody's clean close: what is queued
        is dropped, the close frame C{close} goes to the attached sink, and the protocol
        gets C{connectionLost} with C{why} (a L{Failure}, or the text of a
        L{ConnectionLost}).
        """
        reason = why if isinstance(why, Failure) else Failure(ConnectionLost(why))
        self._end(reason, close)

    def flush(self) -> None:
        """
        Called once per reactor turn by the registry after a write: deliver the queue.
        """
        self._dirty = False
        pending = self._pendingEnd
        if pending is not None:
            self._end(pending[1], pending[0])
            return
        self._pump()

    def shutdown(self, code: int, reason: str) -> None:
        """
        The server is stopping: whatever the sink's state, send it what is queued and
        the close frame, and let the protocol go now rather than when the client comes
        back.  Nobody comes back to a stopped server: no close frame is kept.
        """
        self._reap()
        self._end(
            Failure(ConnectionDone("server shutting down")),
            self._close or (code, reason),
            flushQueue=True,
        )

    # -- IPushProducer, driven by the attached sink --------------------------------

    def pauseProducing(self) -> None:
        """
        The sink cannot take more: keep queueing (the sink's C{sinkPaused} says so).
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

    # -- the one way a session ends -----------------------------------------------------

    def _end(
        self,
        reason: Failure,
        close: Optional[tuple[int, str]] = None,
        flushQueue: bool = False,
    ) -> None:
        """
        End the session, once: every end passes here.

        The attached sink (if any) gets the queue when C{flushQueue} is set, then the
        close frame, and is let go; an HTTP session then stays to serve the close frame
        until its disconnect timer reaps it.  The protocol's producer is stopped and the
        protocol gets C{connectionLost(reason)}.

        :param reason: What the protocol's C{connectionLost} gets.
        :param close: The close code and reason; C{None} keeps the one set by L{close}.
        :param flushQueue: Deliver what is queued before the close frame, even to a
            paused sink (at shutdown); otherwise it is dropped.
        """
        if self.readyState == CLOSED:
            return
        self.readyState = CLOSED
        self._pendingEnd = None
        if close is not None and (close != self._close or not self._closeFrame):
            self._close = close
            self._closeFrame = closeFrame(*close)
        sink = self._sink
        if sink is not None:
            self._sink = None
            self._cancelTimer()
            close = self._close or GO_AWAY
            try:
                if flushQueue and self._queue:
                    sink.writeMessages(self._queue)
                    self._factory.observer.sent(self._queue, self._queuedCount)
                sink.writeFrame(self._closeFrame or closeFrame(*close))
                sink.finishSink(*close)
            except BaseException:
                # The protocol still gets its connectionLost.
                self._factory.logFailure(
                    f"SockJS session {self.sessionId}: its close frame could not be sent"
                )
        self._dropQueue()
        if not self._registered:
            self._cancelTimer()
        elif not self._reaped and self._timer is None:
            self._startDisconnect()
        self._releaseReaders()
        producer = self._producer
        self._producer = None
        if producer is not None:
            try:
                producer.stopProducing()
            except BaseException:
                self._factory.logFailure(
                    f"SockJS session {self.sessionId}: the producer's stopProducing raised"
                )
        self._factory.sessionLost(self)
        protocol = self._protocol
        self._protocol = None
        if protocol is None:
            return
        try:
            protocol.connectionLost(reason)
        except BaseException:
            self._factory.logFailure(
                f"SockJS session {self.sessionId}: the protocol's connectionLost raised"
            )

    # -- internals ----------------------------------------------------------------------

    def _pump(self) -> None:
        sink = self._sink
        if sink is None or sink.sinkPaused:
            return
        if self._queue:
            queue = self._queue
            self._queue = []
            self._unjoined = 0
            self._queuedBytes = 0
            count = self._queuedCount
            self._queuedCount = 0
            sink.writeMessages(queue)
            self._factory.observer.sent(queue, count)
            self._queueDrained()
            if self._sink is not sink or sink.sinkPaused:
                return
        if self._close is not None and self.readyState == CLOSING and self._pendingEnd is None:
            self._end(Failure(ConnectionDone()))

    def _connectProtocol(self) -> None:
        protocol = self._protocol
        assert protocol is not None
        try:
            protocol.makeConnection(self.transport)
        except BaseException:
            self._userCodeFailed("makeConnection")

    def _userCodeFailed(self, where: str) -> None:
        """
        The protocol's own code raised: log it and end the session with 1011, giving
        the protocol that failure, as a TCP transport does.
        """
        failure = Failure()
        self._factory.logFailure(
            f"SockJS session {self.sessionId}: the protocol's {where} raised", failure
        )
        self._end(failure, INTERNAL_ERROR)

    def _startHeartbeat(self) -> None:
        if self._framed:
            self._timer = self._factory.timers.callLater(
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
        timer = self._timer = self._factory.timers.callLater(
            self._factory.disconnectDelay, self._expire
        )
        self._expireAt = timer.getTime()

    def _expire(self) -> None:
        self._timer = None
        expireAt = self._expireAt
        if expireAt is not None:
            self._timer = waitRest(self._factory.timers, expireAt, self._expire)
            if self._timer is not None:
                return
        self._expireAt = None
        self._reap()
        self._end(Failure(ConnectionLost("SockJS session timed out")))

    def _reap(self) -> None:
        """
        Leave the registry: no receiving connection will find this session again.
        """
        self._reaped = True
        self._cancelTimer()
        self._factory.discard(self)

    def _cancelTimer(self) -> None:
        self._expireAt = None
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
