"""
The session registry of one SockJS endpoint: its sessions by id, the user's protocol
factory it wraps, the one flush per reactor turn, and logging.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._deadline import Timers
from ._framing import closeFrame, decodeWritten, quoteMessage
from ._options import SockJSOptions
from ._session import GO_AWAY, INTERNAL_ERROR, SHUTDOWN, ConnectionInfo, Session
from .interfaces import ISessionSink
from .metrics import NULL_OBSERVER, NullObserver

__all__ = ["SessionRegistry"]

TOO_MANY_SESSIONS = (1013, "Too many sessions")

_severityLevels = {"debug": "debug", "info": "info", "error": "error"}


class SessionRegistry:
    """
    The sessions of one SockJS endpoint, by id, each served by a protocol built by the
    wrapped factory.  (It is not a Twisted protocol factory: it wraps one.)

    :ivar options: The endpoint's options.
    :ivar clock: The reactor's clock that drives every timer.
    :ivar timers: The sessions' heartbeat and disconnect timers, behind one of C{clock}.
    :ivar highWater: Queued bytes past which a session pauses its protocol's producer.
    :ivar maxQueue: Queued bytes past which a session is closed (its protocol ignores
        backpressure): the C{max_queue_size} option.
    """

    log = Logger()

    def __init__(
        self,
        factory: IProtocolFactory,
        options: SockJSOptions,
        reactor: Optional[IReactorTime] = None,
        highWater: int = 64 * 1024,
    ) -> None:
        """
        :param factory: The user's protocol factory.
        :param options: The endpoint's options.
        :param reactor: Provides C{callLater}; the global reactor by default.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor  # type: ignore[assignment]
        self.factory = factory
        self.options = options
        self.clock: IReactorTime = reactor  # type: ignore[assignment]
        self.timers = Timers(self.clock)
        self.heartbeatDelay = options.heartbeat_delay
        self.disconnectDelay = options.disconnect_delay
        self.highWater = highWater
        self.maxQueue = options.max_queue_size
        self._sessions: dict[str, Session] = {}
        self._websockets: set[Session] = set()
        self._pending: list[Session] = []
        self._flushCall: Optional[IDelayedCall] = None
        self._batchDepth = 0
        self._lastData: Optional[bytes] = None
        self._lastQuoted = ""
        self._started = False
        self.observer: NullObserver = NULL_OBSERVER
        self._stopped = False

    # -- the wrapped factory's lifecycle ----------------------------------------------

    def start(self) -> None:
        """
        Start the wrapped factory (once).
        """
        self._stopped = False
        if not self._started:
            self._started = True
            self.factory.doStart()

    def stop(self) -> None:
        """
        Stop the wrapped factory, if it was started.  New sessions are refused with
        C{1001 "Server shutting down"} until L{start}.
        """
        self._stopped = True
        if self._started:
            self._started = False
            self.factory.doStop()

    # -- sessions -----------------------------------------------------------------------

    def getSession(self, sessionId: str) -> Optional[Session]:
        """
        The HTTP session with this id, if any.
        """
        return self._sessions.get(sessionId)

    def openSessions(self) -> list[Session]:
        """
        Every session this endpoint holds now, HTTP and websocket.
        """
        return [*self._sessions.values(), *self._websockets]

    def __len__(self) -> int:
        """
        How many sessions this endpoint holds now (HTTP ones until they are reaped).
        """
        return len(self._sessions) + len(self._websockets)

    def openSession(
        self,
        sessionId: Optional[str],
        sink: ISessionSink,
        info: ConnectionInfo,
        registered: bool = True,
        framed: bool = True,
    ) -> Optional[Session]:
        """
        Open a new session whose first receiving connection is C{sink}, or refuse it with
        a close frame when the endpoint is stopped, when the limit of sessions is reached
        or when the wrapped factory's C{buildProtocol} returns C{None}.
        """
        if self._stopped:
            self._refuse(sink, SHUTDOWN)
            return None
        maxSessions = self.options.max_sessions
        if maxSessions is not None and len(self) >= maxSessions:
            self.logMessage("error", "SockJS session refused: too many sessions")
            self.observer.refused("max_sessions")
            self._refuse(sink, TOO_MANY_SESSIONS)
            return None
        try:
            protocol = self.factory.buildProtocol(info.peer)
        except BaseException:
            self.logFailure("SockJS session refused: buildProtocol raised")
            protocol = None
        if protocol is None:
            self._refuse(sink, GO_AWAY)
            return None
        session = Session(self, sessionId, protocol, registered, framed)
        self.observer.sessionOpened(sink.protocolName)
        if registered:
            assert sessionId is not None
            self._sessions[sessionId] = session
        else:
            self._websockets.add(session)
        session.attach(sink, info)
        return session

    def _refuse(self, sink: ISessionSink, close: tuple[int, str]) -> None:
        sink.writeFrame(closeFrame(*close))
        sink.finishSink(*close)

    def discard(self, session: Session) -> None:
        """
        Forget an HTTP session whose disconnect timer ran out.
        """
        if session.sessionId is not None and self._sessions.get(session.sessionId) is session:
            del self._sessions[session.sessionId]

    def sessionLost(self, session: Session) -> None:
        """
        C{session} gave its protocol C{connectionLost}; a websocket session is gone.
        """
        self._websockets.discard(session)
        self.observer.sessionClosed(session)

    # -- writes ---------------------------------------------------------------------------

    def quote(self, data: bytes, framed: bool) -> str:
        """
        Check and prepare one outgoing message: quoted JSON for framed sessions, text for
        raw websockets.  The same bytes object written to many sessions in a row (a
        broadcast) is quoted once.
        """
        if not framed:
            return decodeWritten(data, False)
        if data is self._lastData:
            return self._lastQuoted
        quoted = quoteMessage(decodeWritten(data, True))
        self._lastData = data
        self._lastQuoted = quoted
        return quoted

    def scheduleFlush(self, session: Session) -> None:
        """
        Flush C{session} once the network input being handled now is handled (see
        L{batch}), or else in the next reactor turn, together with every other session
        written to meanwhile.
        """
        self._pending.append(session)
        if self._batchDepth == 0 and self._flushCall is None:
            self._flushCall = self.clock.callLater(0, self._flushPending)

    def beginBatch(self) -> None:
        """
        Network input is being handled (a websocket read, an C{xhr_send}): what it makes
        the protocols write is flushed when L{endBatch} is called, without a timer.
        """
        self._batchDepth += 1

    def endBatch(self) -> None:
        """
        The network input of L{beginBatch} is handled: flush what it wrote.
        """
        self._batchDepth -= 1
        if self._batchDepth == 0 and self._pending:
            self._flushPending()

    def _flushPending(self) -> None:
        call = self._flushCall
        if call is not None:
            self._flushCall = None
            if call.active():
                call.cancel()
        pending = self._pending
        self._pending = []
        self._lastData = None
        for session in pending:
            try:
                session.flush()
            except BaseException:
                # A bug (or a producer's resumeProducing raising) must not stall the
                # other sessions of this turn.
                failure = Failure()
                self.logFailure(f"SockJS session {session.sessionId}: flush failed", failure)
                session.fail(INTERNAL_ERROR, failure)

    # -- logging ---------------------------------------------------------------------------

    def logMessage(self, severity: str, message: str) -> None:
        """
        Log through the C{log} option, or to L{twisted.logger}.
        """
        custom = self.options.log
        if custom is not None:
            custom(severity, message)
            return
        level: Any = getattr(self.log, _severityLevels.get(severity, "info"))
        level("{message}", message=message)

    def logFailure(self, message: str, failure: Optional[Failure] = None) -> None:
        """
        Log an unexpected exception (the one being handled, by default): through the
        C{log} option as an C{"error"} with the traceback, or to L{twisted.logger}.
        """
        if failure is None:
            failure = Failure()
        custom = self.options.log
        if custom is not None:
            custom("error", f"{message}\n{failure.getTraceback()}")
            return
        self.log.failure("{message}", failure=failure, message=message)

    # -- shutdown ----------------------------------------------------------------------------

    def closeAll(self, code: int, reason: str) -> None:
        """
        Close every session with C{code} and C{reason}, giving every protocol its
        C{connectionLost} now.
        """
        for session in self.openSessions():
            session.shutdown(code, reason)
