"""
The XHR transports: C{xhr} (polling), C{xhr_streaming}, and C{xhr_send}, through which
every HTTP transport but JSONP sends.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from .._framing import BrokenFraming, decodeHTTPPayload
from .._session import OPEN
from ._http import (
    APPLICATION_JAVASCRIPT,
    TEXT_PLAIN,
    ResponseSink,
    TransportResource,
    notFound,
    setCORS,
    setNoCache,
    text,
)

_PRELUDE = b"h" * 2048 + b"\n"


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
        request.setHeader(b"Content-Type", APPLICATION_JAVASCRIPT)
        setNoCache(request)
        setCORS(request, self.options)
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
    resource: TransportResource, request: IRequest, sessionId: str, payload: bytes
) -> bytes | None:
    """
    Hand the messages in C{payload} to their session.

    :return: An error answer, or C{None} when the messages were delivered.
    """
    session = resource.registry.getSession(sessionId)
    if session is None or session.readyState != OPEN:
        resource.registry.observer.unknownSession()
        return notFound(request)
    if len(payload) > resource.options.max_body_size:
        resource.registry.observer.refused("max_body_size")
        return text(request, 413, "Payload too large.")
    try:
        messages = decodeHTTPPayload(payload)
    except BrokenFraming as e:
        return text(request, 500, e.message)
    registry = resource.registry
    registry.beginBatch()
    try:
        session.messagesReceived(messages)
    finally:
        registry.endBatch()
    return None


class XHRSend(TransportResource):
    """
    C{POST .../xhr_send}: a JSON array of messages; 204 when delivered.
    """

    methods = {b"POST": "send_", b"OPTIONS": "options_"}
    allowed = b"OPTIONS, POST"

    def send_(self, request: IRequest, sessionId: str) -> bytes:
        setNoCache(request)
        setCORS(request, self.options)
        payload = request.content.read()
        error = receiveMessages(self, request, sessionId, payload)
        if error is not None:
            return error
        request.setResponseCode(204)
        request.setHeader(b"Content-Type", TEXT_PLAIN)
        return b""
