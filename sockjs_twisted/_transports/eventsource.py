"""
The EventSource transport: C{GET .../eventsource}.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from ._http import ResponseSink, TransportResource, setCORS, setNoCache


class EventSourceSink(ResponseSink):
    __slots__ = ()
    protocolName = "eventsource"
    streaming = True

    def start(self) -> None:
        # A new line first, for an old Opera bug.
        self._request.write(b"\r\n")

    def wrap(self, frame: str) -> bytes:
        # sockjs-client decodeURI()s every event: '%' must travel as %25 (and, were they
        # ever to appear, the line breaks and NUL that would split or end the event).
        if "%" in frame or "\r" in frame or "\n" in frame or "\x00" in frame:
            frame = (
                frame.replace("%", "%25")
                .replace("\r", "%0D")
                .replace("\n", "%0A")
                .replace("\x00", "%00")
            )
        return ("data: " + frame + "\r\n\r\n").encode("utf-8")


class EventSource(TransportResource):
    """
    C{GET .../eventsource}: frames as server-sent events until C{response_limit}.
    """

    methods = {b"GET": "receive_"}
    allowed = b"GET"

    def receive_(self, request: IRequest, sessionId: str) -> object:
        request.setHeader(b"Content-Type", b"text/event-stream")
        setNoCache(request)
        setCORS(request, self.options)
        sink = EventSourceSink(request, self.options.response_limit)
        sink.start()
        return self.receive(request, sessionId, sink)
