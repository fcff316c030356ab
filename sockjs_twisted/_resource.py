"""
L{SockJSResource}: one SockJS endpoint as a twisted.web resource.  It routes
C{<server>/<session>/<transport>} and the static pages (nothing is created while routing),
and owns the endpoint's lifecycle: the wrapped factory's start and stop, and the close of
every session before the reactor shuts down.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from twisted.application.service import IService, Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.error import TimeoutError
from twisted.internet.interfaces import IProtocolFactory, IReactorCore, IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from zope.interface import implementer

from ._options import SockJSOptions
from ._registry import SessionRegistry
from ._session import SHUTDOWN
from ._static import Greeting, IFrame, Info
from ._transports._http import notFound
from ._transports.eventsource import EventSource
from ._transports.htmlfile import HTMLFile
from ._transports.jsonp import JSONPPolling, JSONPSend
from ._transports.websocket import CLOSE_HANDSHAKE_TIMEOUT, WebSocketGate
from ._transports.xhr import XHRPolling, XHRSend, XHRStreaming

__all__ = ["SockJSResource"]

_IFRAME = re.compile(rb"iframe[0-9a-z_.\-]*\.html")
MAX_ID_LENGTH = 128


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return notFound(request)


@implementer(IResource)
class _SessionURL:
    """
    A transport bound to the session id of one request: a leaf resource.
    """

    __slots__ = ("_transport", "_sessionId")
    isLeaf = True

    def __init__(self, transport: Any, sessionId: str) -> None:
        self._transport = transport
        self._sessionId = sessionId

    def render(self, request: IRequest) -> Any:
        return self._transport.renderSession(request, self._sessionId)

    def getChildWithDefault(self, name: bytes, request: IRequest) -> IResource:
        raise NotImplementedError("a leaf")

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError("a leaf")


def _validId(segment: bytes) -> Optional[str]:
    """
    A server or session id segment of a URL, decoded, or C{None} if it is not one.
    """
    if not segment or b"." in segment or len(segment) > MAX_ID_LENGTH:
        return None
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _rawSegments(request: IRequest, routed: int) -> Optional[list[bytes]]:
    """
    The raw (not percent-decoded) path segments after the first C{routed} ones, or
    C{None} if those were sent percent-encoded.
    """
    raw = request.path.split(b"/")[1:]  # type: ignore[attr-defined]
    if raw[:routed] != request.prepath[:routed]:  # type: ignore[attr-defined]
        return None
    return raw[routed:]


def _whenFired(d: Deferred[Any]) -> Deferred[None]:
    """
    A new Deferred that fires with C{None} when C{d} fires, leaving C{d}'s result (and
    C{d} itself, should the new one be cancelled) alone.
    """
    notice: Deferred[None] = Deferred()

    def passOn(result: object) -> object:
        if not notice.called:
            notice.callback(None)
        return result

    d.addBoth(passOn)
    return notice


class _ResourceService(Service):
    """
    The service of L{SockJSResource.asService}.
    """

    def __init__(self, resource: SockJSResource) -> None:
        self._resource = resource

    def startService(self) -> None:
        super().startService()
        self._resource.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._resource.stop()


class SockJSResource(Resource):
    """
    A SockJS endpoint: mount it anywhere in a twisted.web tree, for example a plain
    C{Site}.  Each instance has its own sessions; ids never leak between endpoints.

    Its lifecycle needs no help.  The wrapped factory is started (C{doStart}) when the
    reactor is running, at once if it already is.  Before the reactor shuts down, every
    session is closed with C{1001 "Server shutting down"} (websockets get a close frame
    with that code, HTTP sessions their close frame and their protocol its
    C{connectionLost}), the reactor waits until the close frames are out, and the wrapped
    factory is stopped (C{doStop}).  L{start}, L{stop} and L{asService} let you choose
    other moments.  With a reactor that is not an C{IReactorCore} (a bare C{Clock} in
    tests), nothing is automatic: call L{start} and L{stop}.

    :ivar sessions: The L{SessionRegistry} of this endpoint.
    :ivar options: The endpoint's L{SockJSOptions}.
    """

    _notFound = _NotFound()

    # L{SockJSFactory} starts its endpoint when it starts listening instead.
    _startsWithReactor = True

    def __init__(
        self,
        factory: IProtocolFactory,
        reactor: Optional[IReactorTime] = None,
        **options: Any,
    ) -> None:
        """
        :param factory: An ordinary protocol factory; each SockJS session gets one of its
            protocols.
        :param reactor: Provides time and the websocket machinery; the global reactor by
            default.
        :param options: See L{SockJSOptions}.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor  # type: ignore[assignment]
        self.options = SockJSOptions(**options)
        self.sessions = SessionRegistry(factory, self.options, reactor)
        self._reactor: IReactorTime = reactor  # type: ignore[assignment]
        self._running = False
        self._stopped = False
        self._shutdownTrigger: Any = None
        self._stopping: Optional[Deferred[None]] = None
        self._greeting = Greeting()
        self._info = Info(self.options)
        self._iframe = IFrame(self.options)
        self._rawWebSocket = WebSocketGate(self.sessions, False, reactor)  # type: ignore[arg-type]
        self._transports: dict[bytes, Any] = {
            b"xhr": XHRPolling(self.sessions),
            b"xhr_send": XHRSend(self.sessions),
            b"xhr_streaming": XHRStreaming(self.sessions),
            b"eventsource": EventSource(self.sessions),
            b"htmlfile": HTMLFile(self.sessions),
            b"jsonp": JSONPPolling(self.sessions),
            b"jsonp_send": JSONPSend(self.sessions),
            b"websocket": WebSocketGate(self.sessions, True, reactor),  # type: ignore[arg-type]
        }
        if self._startsWithReactor and IReactorCore.providedBy(reactor):
            reactor.callWhenRunning(self._startUnlessStopped)  # type: ignore[union-attr]

    def render(self, request: IRequest) -> bytes:
        if _rawSegments(request, len(request.prepath)) is None:  # type: ignore[attr-defined]
            return notFound(request)
        return self._greeting.render(request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        # Route on the raw segments, as sockjs-node does: twisted.web has percent-decoded
        # them, and a proxy with path rules in front sees them raw.  The prefix above this
        # resource was matched decoded, so it must have been sent as it is.
        segments = _rawSegments(request, len(request.prepath) - 1)  # type: ignore[attr-defined]
        if segments is None:
            return self._notFound
        if len(segments) == 3:
            server, session, name = segments
            transport = self._transports.get(name)
            sessionId = _validId(session)
            if transport is None or sessionId is None or _validId(server) is None:
                return self._notFound
            return _SessionURL(transport, sessionId)
        if len(segments) != 1:
            return self._notFound
        path = segments[0]
        if path == b"":
            return self._greeting
        if path == b"info":
            return self._info
        if path == b"websocket":
            return self._rawWebSocket
        if _IFRAME.fullmatch(path):
            return self._iframe
        return self._notFound

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """
        Start the wrapped factory, and arrange for L{stop} before the reactor shuts down
        (a system event trigger, removed once stopped).  Calling it again while started
        does nothing; after L{stop} it starts the endpoint again.
        """
        if self._running:
            return
        self._running = True
        self._stopped = False
        self._stopping = None
        self.sessions.start()
        reactor = self._reactor
        if self._shutdownTrigger is None and IReactorCore.providedBy(reactor):
            self._shutdownTrigger = reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
                "before", "shutdown", self._reactorShuttingDown
            )

    def stop(self, code: int = SHUTDOWN[0], reason: str = SHUTDOWN[1]) -> Deferred[None]:
        """
        Close every session of this endpoint (with C{1001 "Server shutting down"} by
        default), giving each protocol its C{connectionLost} now, and stop the wrapped
        factory.  Until L{start} is called again, new sessions are refused with the same
        close frame.  Stopping a stopped endpoint does nothing more.

        :return: A Deferred that fires when the close frames are out: every websocket
            has finished its close handshake (or was dropped after
            C{CLOSE_HANDSHAKE_TIMEOUT} seconds) and the HTTP responses have had a
            reactor turn to be written.  Should the reactor shut down meanwhile, it
            waits for it.
        """
        if self._stopped:
            stopping = self._stopping
            return succeed(None) if stopping is None else _whenFired(stopping)
        self._running = False
        self._stopped = True
        closing = [_whenFired(d) for d in self._websocketsClosed()]
        self.sessions.closeAll(code, reason)
        self.sessions.stop()
        stopping = self._stopping = self._settle(closing)

        def settled(result: None) -> None:
            # The reactor need not wait for this stop any more (unless the endpoint was
            # started again meanwhile, and is to be stopped again then).
            if self._stopping is stopping:
                self._stopping = None
            trigger = self._shutdownTrigger
            if trigger is not None and not self._running:
                self._shutdownTrigger = None
                self._reactor.removeSystemEventTrigger(trigger)  # type: ignore[attr-defined]

        stopping.addCallback(settled)
        return _whenFired(stopping)

    def asService(self) -> IService:
        """
        A service that starts this endpoint when it starts and stops it when it stops
        (its C{stopService} returns L{stop}'s Deferred).
        """
        return _ResourceService(self)

    def _startUnlessStopped(self) -> None:
        if not self._stopped:
            self.start()

    def _reactorShuttingDown(self) -> Deferred[None]:
        # The reactor is firing this trigger: it is not ours to remove any more.
        self._shutdownTrigger = None
        return self.stop()

    def _websocketsClosed(self) -> list[Deferred[Any]]:
        """
        For each websocket carrying a session now, a Deferred that fires when it closes.
        """
        waits: list[Deferred[Any]] = []
        for session in self.sessions.openSessions():
            closed = getattr(session._sink, "is_closed", None)
            if isinstance(closed, Deferred) and not closed.called:
                waits.append(closed)
        return waits

    def _settle(self, closing: list[Deferred[None]]) -> Deferred[None]:
        clock = self._reactor
        allClosed: Deferred[Any] = DeferredList(closing, consumeErrors=True)
        # A safety net: a websocket whose close frame could not be sent (its reader
        # stopped reading) has no close handshake timer.
        allClosed.addTimeout(CLOSE_HANDSHAKE_TIMEOUT + 1, clock)

        def timedOut(failure: Failure) -> None:
            failure.trap(TimeoutError, CancelledError)

        def oneMoreTurn(_: object) -> Deferred[None]:
            # What the sessions' close wrote to HTTP responses is in the transports'
            # buffers; the reactor writes it in its next turn.
            turn: Deferred[None] = Deferred()
            clock.callLater(0, turn.callback, None)
            return turn

        allClosed.addErrback(timedOut)
        allClosed.addCallback(oneMoreTurn)
        return allClosed
