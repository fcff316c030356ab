"""
The htmlfile transport: C{GET .../htmlfile?c=callback}, a page of script elements that
call the parent window's callback.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from .._framing import isValidCallback, jsString
from ._http import (
    TEXT_HTML,
    ResponseSink,
    TransportResource,
    queryArguments,
    setCORS,
    setNoCache,
    text,
)

_HEAD = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
"""


def callbackParameter(request: IRequest) -> tuple[str | None, bytes | None]:
    """
    The validated C{c} query parameter, or the error answer to give instead.  A C{c}
    given more than once is invalid (sockjs-node gets an array and refuses it).
    """
    values = queryArguments(request).get(b"c")
    if not values:
        return None, text(request, 500, '"callback" parameter required')
    if len(values) > 1:
        return None, text(request, 500, 'invalid "callback" parameter')
    try:
        callback = values[0].decode("ascii")
    except UnicodeDecodeError:
        callback = ""
    if not isValidCallback(callback):
        return None, text(request, 500, 'invalid "callback" parameter')
    return callback, None


class HTMLFileSink(ResponseSink):
    __slots__ = ()
    protocolName = "htmlfile"
    streaming = True

    def start(self, callback: str) -> None:  # type: ignore[override]
        head = _HEAD % (callback,)
        # Padded past 1 KiB so that browsers start rendering at once.
        head += " " * (1024 - len(head) + 14)
        self._request.write((head + "\r\n\r\n").encode("utf-8"))

    def wrap(self, frame: str) -> bytes:
        return ("<script>\np(" + jsString(frame) + ");\n</script>\r\n").encode("utf-8")


class HTMLFile(TransportResource):
    """
    C{GET .../htmlfile?c=callback}: frames as C{<script>} elements until
    C{response_limit}.
    """

    methods = {b"GET": "receive_"}
    allowed = b"GET"

    def receive_(self, request: IRequest, sessionId: str) -> object:
        setNoCache(request)
        callback, error = callbackParameter(request)
        if error is not None:
            return error
        assert callback is not None
        request.setHeader(b"Content-Type", TEXT_HTML)
        setCORS(request, self.options)
        sink = HTMLFileSink(request, self.options.response_limit)
        sink.start(callback)
        return self.receive(request, sessionId, sink)
