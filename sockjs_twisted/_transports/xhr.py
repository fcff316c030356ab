"""
The XHR transports: C{xhr} (polling), C{xhr_streaming}, and C{xhr_send}, through which
every HTTP transport but JSONP sends.
"""

from __future__ import annotations

from typing import Callable, cast

from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request

from .._framing import BrokenFraming, decodeHTTPPayload
from .._leanweb import setHeaders
from .._session import OPEN
from ._http import (
    APPLICATION_JAVASCRIPT,
    NO_CACHE,
    NO_CACHE_HEADERS,
    TEXT_PLAIN_HEADERS,
    ResponseSink,
    TransportResource,
    notFound,
    setCORS,
    text,
)

_PRELUDE = b"h" * 2048 + b"\n"
_RECEIVING = ((b"Content-Type", APPLICATION_JAVASCRIPT), (b"Cache-Control", NO_CACHE))


class XHRPollingSink(ResponseSink):
    __slots__ = ()
    protocolName = "xhr-polling"

    def wrap(self, frame: str) -> bytes:
        return (frame + "\n").encode("utf-8")


class XHRStreamingSink(XHRPollingSink):
    __slots__ = ()
    protocolName = "xhr-streaming"
    streaming = True

    def start(self) -> None:
        self._request.write(_PRELUDE)


class _XHRReceiver(TransportResource):
    methods = {b"POST": "receive_", b"OPTIONS": "options_"}
    allowed = b"OPTIONS, POST"
    sinkType: type[ResponseSink] = XHRPollingSink

    def receive_(self, request: IRequest, sessionId: str) -> object:
        setCORS(request, self.options, _RECEIVING)
        sink = self.sinkType(request, self.options.response_limit)
        sink.start()
        return self.receive(request, sessionId, sink)


class XHRPolling(_XHRReceiver):
    """
    C{POST .../xhr}: one frame per response.
    """


class XHRStreaming(_XHRReceiver):
    """
    C{POST .../xhr_streaming}: a 2 KiB prelude, then frames until C{response_limit}.
    """

    sinkType = XHRStreamingSink


def receiveMessages(
    resource: TransportResource,
    request: IRequest,
    sessionId: str,
    payload: bytes,
    answer: Callable[[IRequest], bytes],
) -> bytes | object:
    """
    Hand the messages in C{payload} to their session, and answer with C{answer} once
    they are delivered.  While the protocol has paused reading, the answer waits
    (C{NOT_DONE_YET}): a client keeps one send in flight, so it stops sending.

    :return: The answer, an error answer, or C{NOT_DONE_YET}.
    """
    session = resource.registry.getSession(sessionId)
    if session is None or session.readyState != OPEN:
        resource.registry.observer.unknownSession()
        return notFound(request)
    maxBody = resource.options.max_body_size
    if len(payload) > maxBody:
        resource.registry.observer.refused("max_body_size")
        return text(request, 413, "Payload too large.")
    try:
        messages = decodeHTTPPayload(payload)
    except BrokenFraming as e:
        return text(request, 500, e.message)
    if session.incomingBacklog and session.incomingBacklog + len(payload) > maxBody:
        # A client that does not wait for its sends' answers: what waits stays within
        # max_body_size.
        return text(request, 503, "Another send is waiting.")
    registry = resource.registry
    registry.beginBatch()
    try:
        waiting = session.messagesReceived(messages)
    finally:
        registry.endBatch()
    if waiting is None:
        return answer(request)
    # The answer waits: twisted.web's Request tells when its connection is gone.
    webRequest = cast(Request, request)
    gone: list[object] = []
    webRequest.notifyFinish().addErrback(gone.append)

    def delivered(ignored: object) -> None:
        if not gone:
            webRequest.write(answer(webRequest))
            webRequest.finish()

    waiting.addCallback(delivered)
    return NOT_DONE_YET


class XHRSend(TransportResource):
    """
    C{POST .../xhr_send}: a JSON array of messages; 204 when delivered.
    """

    methods = {b"POST": "send_", b"OPTIONS": "options_"}
    allowed = b"OPTIONS, POST"

    def send_(self, request: IRequest, sessionId: str) -> object:
        setCORS(request, self.options, NO_CACHE_HEADERS)
        payload = request.content.read()
        return receiveMessages(self, request, sessionId, payload, _noContent)


def _noContent(request: IRequest) -> bytes:
    request.setResponseCode(204)
    setHeaders(request, TEXT_PLAIN_HEADERS)
    return b""
