"""
The JSONP transport: C{GET .../jsonp?c=callback} (polling) and C{POST .../jsonp_send}.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from .._framing import jsString
from ._http import (
    APPLICATION_JAVASCRIPT,
    TEXT_PLAIN,
    ResponseSink,
    TransportResource,
    parseQuery,
    setCORS,
    setNoCache,
)
from .htmlfile import callbackParameter
from .xhr import receiveMessages


def formField(body: bytes, name: bytes) -> bytes:
    """
    The first value of field C{name} in a form-encoded C{body}, as bytes (empty if none).
    """
    values = parseQuery(body).get(name)
    return values[0] if values else b""


class JSONPSink(ResponseSink):
    __slots__ = ("_callback",)
    protocolName = "jsonp-polling"

    def __init__(self, request: IRequest, limit: int, callback: str) -> None:
        super().__init__(request, limit)
        self._callback = callback

    def wrap(self, frame: str) -> bytes:
        # The comment keeps a callback name from being the start of the body (Rosetta Flash).
        return ("/**/" + self._callback + "(" + jsString(frame) + ");\r\n").encode("utf-8")


class JSONPPolling(TransportResource):
    """
    C{GET .../jsonp?c=callback}: one frame per response, as a script calling back.
    """

    methods = {b"GET": "receive_"}
    allowed = b"GET"

    def receive_(self, request: IRequest, sessionId: str) -> object:
        setNoCache(request)
        callback, error = callbackParameter(request)
        if error is not None:
            return error
        assert callback is not None
        request.setHeader(b"Content-Type", APPLICATION_JAVASCRIPT)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        setCORS(request, self.options)
        return self.receive(request, sessionId, JSONPSink(request, 0, callback))


class JSONPSend(TransportResource):
    """
    C{POST .../jsonp_send}: messages in a form field C{d} or as the raw body; answers
    C{ok}.
    """

    methods = {b"POST": "send_"}
    allowed = b"POST"

    def send_(self, request: IRequest, sessionId: str) -> object:
        setNoCache(request)
        setCORS(request, self.options)
        payload = request.content.read()
        contentType = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
        if contentType.lower() == b"application/x-www-form-urlencoded":
            payload = formField(payload, b"d")
        return receiveMessages(self, request, sessionId, payload, _ok)


def _ok(request: IRequest) -> bytes:
    request.setHeader(b"Content-Type", TEXT_PLAIN)
    return b"ok"
