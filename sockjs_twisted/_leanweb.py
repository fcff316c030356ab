"""
A leaner twisted.web request for L{SockJSSite}: the same responses, for less CPU.

L{LeanRequest} is twisted.web's L{Request <twisted.web.server.Request>} with its
per-response work done once where it can be: the C{Date} header is formatted once per
second of the site's reactor clock, the constant C{Server} header is not encoded again,
headers whose names are known canonical constants and whose values are safe are stored
without twisted.web's per-call name encoding and whitespace sanitizing, the status line
and headers leave in one write with the first body bytes (and, for a response written
whole, with the end of the response), and the site's resource tree is traversed without
a copy of the path.  Everything else (HEAD, errors, unsupported methods, encoders,
producers, what the channel does with the request) is twisted.web's own code.

Its fast paths use twisted.web internals: L{SUPPORTED} says whether the installed
twisted.web has them as expected (checked at import).  When it does not, L{SockJSSite}
uses plain twisted.web requests, and the transports set their headers through
C{setHeader}.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Callable, Optional

from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.error import UnsupportedMethod
from twisted.web.http import (
    NO_BODY_CODES,
    HTTPChannel,
    datetimeToString,
    parse_qs,
    unquote,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest

__all__ = ["SUPPORTED", "LeanRequest", "setHeaders", "whenFinished"]


_QUEUED_SENTINEL: object = getattr(http, "_QUEUED_SENTINEL", None)


def _supported() -> bool:
    """
    Does the installed twisted.web keep what L{LeanRequest} relies on: headers stored in
    a C{_rawHeaders} dict under canonical names (Twisted 23 and later), and the
    request's and channel's attributes used below?
    """
    headers = Headers()
    raw = getattr(headers, "_rawHeaders", None)
    if not isinstance(raw, dict):
        return False
    headers.setRawHeaders(b"content-type", [b"x"])
    if raw != {b"Content-Type": [b"x"]}:
        return False
    needed = [
        (server.Request, "_cleanup"),
        (server.Request, "_inFakeHead"),
        (server.Request, "_encoder"),
        (server.Request, "_disconnected"),
        (server.Request, "processingFailed"),
        (server.Request, "_handleStar"),
        (server.Site, "getResourceFor"),
        (HTTPChannel, "writeHeaders"),
        (HTTPChannel, "requestDone"),
    ]
    if not all(hasattr(owner, name) for owner, name in needed):
        return False
    if _QUEUED_SENTINEL is None:
        return False
    return isinstance(server.version, bytes)


SUPPORTED: bool = _supported()

_SERVER = server.version

# Header names set by this package, in the canonical capitalisation that twisted.web's
# Headers stores them under.
KNOWN_NAMES: frozenset[bytes] = frozenset(
    [
        b"Access-Control-Allow-Credentials",
        b"Access-Control-Allow-Headers",
        b"Access-Control-Allow-Methods",
        b"Access-Control-Allow-Origin",
        b"Access-Control-Max-Age",
        b"Allow",
        b"Cache-Control",
        b"Connection",
        b"Content-Length",
        b"Content-Type",
        b"Date",
        b"Expires",
        b"Server",
        b"Set-Cookie",
        b"Transfer-Encoding",
        b"Vary",
        b"X-Content-Type-Options",
    ]
)


# Request headers this package reads, by the names it asks for them, to the names
# twisted.web's Headers stores them under.
_REQUEST_NAMES: dict[bytes, bytes] = {
    b"origin": b"Origin",
    b"access-control-request-headers": b"Access-Control-Request-Headers",
    b"content-type": b"Content-Type",
    b"if-none-match": b"If-None-Match",
}


class _DateCache:
    """
    The C{Date} header value of the current second.
    """

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def at(self, now: float) -> bytes:
        second = int(now)
        if second != self.second:
            self.value = datetimeToString(second)
            self.second = second
        return self.value


_dates = _DateCache()
_getResourceFor = server.Site.getResourceFor
_getChildWithDefault = resource.Resource.getChildWithDefault


class _FinishHook:
    """
    A callable in a request's C{notifications}, where twisted.web keeps the Deferreds of
    C{notifyFinish}: called with C{None} when the response finished, with the reason
    when the connection was lost first, in its turn with those Deferreds.
    """

    __slots__ = ("_hook",)

    def __init__(self, hook: Callable[[Optional[Failure]], object]) -> None:
        self._hook = hook

    def callback(self, result: None) -> None:
        self._hook(None)

    def errback(self, reason: Any) -> None:
        self._hook(reason if isinstance(reason, Failure) else Failure(reason))


class _Replay:
    """
    A resource that answers twisted.web's own C{Request.render} as the resource that a
    L{LeanRequest} rendered already did, so that the uncommon outcomes (an unsupported
    method, a body that is not bytes, HEAD) take twisted.web's path without rendering
    twice.
    """

    def __init__(self, resrc: Any, outcome: Callable[[], Any]) -> None:
        self._resrc = resrc
        self._outcome: Optional[Callable[[], Any]] = outcome

    def render(self, request: IRequest) -> Any:
        outcome = self._outcome
        if outcome is not None:
            self._outcome = None
            return outcome()
        # A HEAD faked as GET renders the resource again, as twisted.web does.
        return self._resrc.render(request)

    def __repr__(self) -> str:
        return repr(self._resrc)


def _raise(e: BaseException) -> Callable[[], Any]:
    def outcome() -> Any:
        raise e

    return outcome


def _ignore(data: bytes) -> None:
    pass


_leanChannels: dict[type, bool] = {}


def _leanChannel(channelType: type) -> bool:
    """
    Does C{channelType} write headers as twisted.web's HTTP/1.1 channel does (so that
    they may be written as bytes through its C{write})?  An HTTP/2 stream does not.  The
    answer is kept in L{_leanChannels}.
    """
    lean = _leanChannels[channelType] = (
        issubclass(channelType, HTTPChannel)
        and getattr(channelType, "writeHeaders", None) is HTTPChannel.writeHeaders
    )
    return lean


class LeanRequest(server.Request):
    """
    twisted.web's request, with less work per response (see the module docstring).  Its
    C{responseHeaders} is an ordinary C{Headers}; what users see is unchanged.
    """

    # Identity, as twisted.web's, without a Python call for each comparison (the channel
    # compares a finished request with the first of its queue).
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __init__(
        self,
        channel: Any,
        queued: object = _QUEUED_SENTINEL,
        parsePOSTFormSubmission: Optional[bool] = None,
    ) -> None:
        # twisted.web's Request.__init__ (server's, http's and Componentized's), in one.
        self.notifications = []
        self.channel = channel
        self.client = channel.getPeer()
        self.host = channel.getHost()
        self.requestHeaders = Headers()
        self.received_cookies = {}
        self.responseHeaders = Headers()
        self.cookies = []
        self.transport = channel.transport
        self.queued = False if queued is _QUEUED_SENTINEL else queued
        self._parsePOSTFormSubmission = (
            channel.site._parsePOSTFormSubmission
            if parsePOSTFormSubmission is None
            else parsePOSTFormSubmission
        )
        self._adapterCache = {}

    def gotLength(self, length: Optional[int]) -> None:
        # twisted.web's, without the AttributeError it raises and catches for a site
        # without getContentFile.
        getContentFile = getattr(getattr(self.channel, "site", None), "getContentFile", None)
        if getContentFile is not None:
            self.content = getContentFile(length)
        elif length is not None and length < 100000:
            self.content = BytesIO()  # type: ignore[assignment]
        else:
            http.Request.gotLength(self, length)

    def parseCookies(self) -> None:
        if b"Cookie" in self.requestHeaders._rawHeaders:
            super().parseCookies()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._parsePOSTFormSubmission:
            super().requestReceived(command, path, version)
            return
        # twisted.web's, without what it does only to parse a form body.
        self.content.seek(0, 0)  # type: ignore[attr-defined]
        self.args = {}  # type: ignore[assignment]
        self.method, self.uri = command, path
        self.clientproto = version
        if b"?" in path:
            self.path, argstring = path.split(b"?", 1)
            self.args = parse_qs(argstring, 1)
        else:
            self.path = path
        self.process()

    def process(self) -> None:
        channel: Any = self.channel
        self.site = site = channel.site
        raw = self.responseHeaders._rawHeaders
        raw[b"Server"] = [_SERVER]
        raw[b"Date"] = [_dates.at(site.reactor.seconds())]
        self.prepath = prepath = []
        self.sitepath: list[bytes]
        path = self.path
        if b"%" in path:
            self.postpath = postpath = list(map(unquote, path[1:].split(b"/")))
        else:
            self.postpath = postpath = path[1:].split(b"/")
        if path == b"*":
            self._handleStar()
            return
        try:
            if type(site).getResourceFor is _getResourceFor:
                self.sitepath = []
                resrc = site.resource
                while postpath and not resrc.isLeaf:
                    element = postpath.pop(0)
                    prepath.append(element)
                    if type(resrc).getChildWithDefault is _getChildWithDefault:
                        child = resrc.children.get(element)
                        resrc = resrc.getChild(element, self) if child is None else child
                    else:
                        resrc = resrc.getChildWithDefault(element, self)
            else:
                resrc = site.getResourceFor(self)
            if resource._IEncodingResource.providedBy(resrc):
                encoder = resrc.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resrc)
        except BaseException:
            self.processingFailed(Failure())

    def getHeader(self, key: Any) -> Any:
        name = _REQUEST_NAMES.get(key)
        if name is None:
            return super().getHeader(key)
        values = self.requestHeaders._rawHeaders.get(name)
        return values[-1] if values else None

    def render(self, resrc: Any) -> None:
        try:
            body = resrc.render(self)
        except UnsupportedMethod as e:
            server.Request.render(self, _Replay(resrc, _raise(e)))
            return
        if body is server.NOT_DONE_YET:
            return
        if (
            type(body) is not bytes
            or self.method == b"HEAD"
            or self._encoder is not None
            or self.startedWriting
        ):
            server.Request.render(self, _Replay(resrc, lambda: body))
            return
        self.responseHeaders._rawHeaders[b"Content-Length"] = [b"%d" % (len(body),)]
        self.writeLast(body)

    def setHeader(self, name: Any, value: Any) -> None:
        if (
            name in KNOWN_NAMES
            and type(value) is bytes
            and b"\n" not in value
            and b"\r" not in value
        ):
            self.responseHeaders._rawHeaders[name] = [value]
        else:
            self.responseHeaders.setRawHeaders(name, [value])

    def write(self, data: bytes) -> None:
        if self.startedWriting:
            if self._encoder is None and not self.finished:
                if self._disconnected:
                    return
                self.sentLength = self.sentLength + len(data)
                if data:
                    if self.chunked:
                        self.channel.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.channel.write(data)
                return
        elif self._leanHead():
            self.channel.write(self._leanFirst(data, False))
            return
        server.Request.write(self, data)

    def writeLast(self, data: bytes) -> None:
        """
        C{write(data)} then C{finish()}, in one write to the channel when this is the
        whole response.
        """
        if self.startedWriting or not self._leanHead():
            self.write(data)
            self.finish()
            return
        self.channel.write(self._leanFirst(data, True))
        self._finished()

    def _leanFirst(self, data: bytes, last: bool) -> bytes:
        """
        What the first C{write(data)} of twisted.web's request (and, if C{last}, the
        C{finish} after it) writes: the status line and headers (see L{_head}), then
        C{data} as the body, and with C{last} the end of a chunked body.
        """
        out = self._head()
        if self.method == b"HEAD" or self.code in NO_BODY_CODES:
            # As twisted.web does: no body, whatever is written after.
            self.write = _ignore  # type: ignore[method-assign]
            return out
        self.sentLength = len(data)
        if self.chunked:
            if data:
                out += b"%x\r\n%s\r\n" % (len(data), data)
            if last:
                out += b"0\r\n\r\n"
        else:
            out += data
        return out

    def _leanHead(self) -> bool:
        """
        May the status line and headers be written by L{_head}, with body bytes after
        them?  Not with an encoder, for a faked HEAD, a finished or lost request, or on
        a channel that writes headers its own way.
        """
        if self._encoder is not None or self._inFakeHead or self.finished or self._disconnected:
            return False
        channelType = type(self.channel)
        lean = _leanChannels.get(channelType)
        return _leanChannel(channelType) if lean is None else lean

    def _head(self) -> bytes:
        """
        Do what the first C{write} of twisted.web's request does before any body: choose
        the default content type and chunking, and return the status line and headers.
        """
        self.startedWriting = 1
        code = self.code
        raw = self.responseHeaders._rawHeaders
        if (
            code not in (204, 304)
            and not raw.get(b"Content-Type")
            and self.defaultContentType is not None
        ):
            length = raw.get(b"Content-Length")
            if not (length and length[0] == b"0"):
                raw[b"Content-Type"] = [self.defaultContentType]
        version = self.clientproto
        if (
            version == b"HTTP/1.1"
            and not raw.get(b"Content-Length")
            and self.method != b"HEAD"
            and code not in NO_BODY_CODES
        ):
            raw[b"Transfer-Encoding"] = [b"chunked"]
            self.chunked = 1
        if self.lastModified is not None:
            if b"Last-Modified" in raw:
                self._log.info(
                    "Warning: last-modified specified both in"
                    " header list and lastModified attribute."
                )
            else:
                raw[b"Last-Modified"] = [datetimeToString(self.lastModified)]
        if self.etag is not None:
            self.responseHeaders.setRawHeaders(b"ETag", [self.etag])
        if self.cookies:
            self.responseHeaders.setRawHeaders(b"Set-Cookie", self.cookies)
        lines = [b"%s %d %s" % (version, code, self.code_message)]
        for name, values in raw.items():
            for value in values:
                lines.append(name + b": " + value)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def _finished(self) -> None:
        """
        What twisted.web's C{finish} does once the last bytes are written.
        """
        channel = self.channel
        if getattr(channel, "factory", None) is not None:
            channel.factory.log(self)
        self.finished = 1
        if not self.queued:
            self._cleanup()

    def whenFinished(self, hook: Callable[[Optional[Failure]], object]) -> None:
        """
        Call C{hook(None)} when the response is finished, or C{hook(reason)} when the
        connection is lost first: C{notifyFinish().addBoth(hook)} without a Deferred.
        """
        self.notifications.append(_FinishHook(hook))  # type: ignore[arg-type]


def whenFinished(request: IRequest, hook: Callable[[Optional[Failure]], object]) -> None:
    """
    C{request.notifyFinish().addBoth(hook)}, without the Deferred for a L{LeanRequest}.
    """
    if isinstance(request, LeanRequest):
        request.whenFinished(hook)
    else:
        request.notifyFinish().addBoth(hook)  # type: ignore[attr-defined]


def setHeaders(request: IRequest, headers: tuple[tuple[bytes, bytes], ...]) -> None:
    """
    C{request.setHeader(name, value)} for each pair of C{headers}, whose names must be in
    L{KNOWN_NAMES} and whose values must be printable ASCII (constants, or checked by
    C{safeHeaderValue}): a L{LeanRequest} stores them as they are.
    """
    if isinstance(request, LeanRequest):
        raw = request.responseHeaders._rawHeaders
        for name, value in headers:
            raw[name] = [value]
    else:
        for name, value in headers:
            request.setHeader(name, value)
