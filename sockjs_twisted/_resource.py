"""
L{SockJSResource}: one SockJS endpoint as a twisted.web resource.  It only routes:
C{<server>/<session>/<transport>} and the static pages.  Nothing is created while routing.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from ._options import SockJSOptions
from ._registry import SessionFactory
from ._session import SHUTDOWN
from ._static import Greeting, IFrame, Info
from ._transports._http import notFound
from ._transports.eventsource import EventSource
from ._transports.htmlfile import HTMLFile
from ._transports.jsonp import JSONPPolling, JSONPSend
from ._transports.websocket import WebSocketGate
from ._transports.xhr import XHRPolling, XHRSend, XHRStreaming

__all__ = ["SockJSResource"]

_IFRAME = re.compile(rb"iframe[0-9a-z_.\-]*\.html")
MAX_ID_LENGTH = 128


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return notFound(request)


class _SessionURL(Resource):
    """
    A transport bound to the session id of one request.
    """

    isLeaf = True

    def __init__(self, transport: Any, sessionId: str) -> None:
        self._transport = transport
        self._sessionId = sessionId

    def render(self, request: IRequest) -> Any:
        return self._transport.renderSession(request, self._sessionId)


def _validId(segment: bytes) -> Optional[str]:
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


class SockJSResource(Resource):
    """
    A SockJS endpoint: mount it anywhere in a twisted.web tree.  Each instance has its own
    sessions; ids never leak between endpoints.

    :ivar sessions: The L{SessionFactory} of this endpoint.
    """

    _notFound = _NotFound()

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
        self.sessions = SessionFactory(factory, self.options, reactor)
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
        path, rest = segments[0], segments[1:]
        if not rest:
            if path == b"":
                return self._greeting
            if path == b"info":
                return self._info
            if path == b"websocket":
                return self._rawWebSocket
            if _IFRAME.fullmatch(path):
                return self._iframe
            return self._notFound
        if len(rest) != 2:
            return self._notFound
        transport = self._transports.get(rest[1])
        if transport is None or _validId(path) is None:
            return self._notFound
        sessionId = _validId(rest[0])
        if sessionId is None:
            return self._notFound
        return _SessionURL(transport, sessionId)

    def stop(self, code: int = SHUTDOWN[0], reason: str = SHUTDOWN[1]) -> None:
        """
        Close every session of this endpoint (with C{1001 "Server shutting down"} by
        default) and stop the wrapped factory.
        """
        self.sessions.closeAll(code, reason)
        self.sessions.stop()
