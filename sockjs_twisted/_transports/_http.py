"""
Plumbing shared by the HTTP transports: CORS, caching and cookie headers, short text
answers, the connection info a session keeps, and the response sinks that carry frames.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar, Optional, cast
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from .._framing import messageFrame
from .._leanweb import LeanRequest, setHeaders, whenFinished
from .._options import SockJSOptions
from .._registry import SessionRegistry
from .._session import EXPOSED_HEADERS as _EXPOSED
from .._session import ConnectionInfo, Session
from ..interfaces import ISessionSink

ONE_YEAR = 365 * 24 * 60 * 60
NO_CACHE = b"no-store, no-cache, no-transform, must-revalidate, max-age=0"
CACHE_FOREVER = b"public, max-age=%d" % ONE_YEAR

TEXT_PLAIN = b"text/plain; charset=UTF-8"
APPLICATION_JAVASCRIPT = b"application/javascript; charset=UTF-8"
APPLICATION_JSON = b"application/json; charset=UTF-8"
TEXT_HTML = b"text/html; charset=UTF-8"


# A header value we echo (Origin, Access-Control-Request-Headers) must be printable ASCII:
# nothing that could split or smuggle a response header.
_SAFE_HEADER_VALUE = re.compile(rb"[\x20-\x7e]*")


def safeHeaderValue(value: Optional[bytes]) -> Optional[bytes]:
    """
    C{value} if it is printable ASCII, else C{None}.
    """
    if value is None or _SAFE_HEADER_VALUE.fullmatch(value) is None:
        return None
    return value


def originAllowed(origin: Optional[bytes], options: SockJSOptions) -> bool:
    """
    Does the origin policy allow C{origin} (the raw header value)?  Requests without an
    Origin (not from a browser page) are always allowed; junk never is, once a policy is
    set.
    """
    allowed = options.allowed_origins
    if allowed is None or origin is None:
        return True
    if safeHeaderValue(origin) is None:
        return False
    return _matchOrigin(origin.decode("ascii"), allowed)


def _matchOrigin(origin: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == origin:
            return True
        if "*" in pattern:
            regex = ".*".join(re.escape(part) for part in pattern.split("*"))
            if re.fullmatch(regex, origin):
                return True
    return False


def parseQuery(query: bytes) -> dict[bytes, list[bytes]]:
    """
    The fields of a query string or form-encoded body, names and values percent-decoded
    with C{+} as a space.  Fields are split on C{&} only: twisted.web (and Python before
    CVE-2021-23336) also split on C{;}, which lets a proxy or cache see one parameter where
    we would see two (parameter cloaking).
    """
    fields: dict[bytes, list[bytes]] = {}
    for field in query.split(b"&"):
        if field:
            name, _, value = field.partition(b"=")
            fields.setdefault(_unquote(name), []).append(_unquote(value))
    return fields


def _unquote(value: bytes) -> bytes:
    return unquote_to_bytes(value.replace(b"+", b" "))


def queryArguments(request: IRequest) -> dict[bytes, list[bytes]]:
    """
    The parameters in C{request}'s query string, parsed by L{parseQuery}.  Every transport
    reads its parameters (C{c}) here, never from C{request.args}.
    """
    return parseQuery(request.uri.partition(b"?")[2])


_VARY_ORIGIN = (b"Vary", b"Origin")
_ANY_ORIGIN = ((b"Access-Control-Allow-Origin", b"*"), _VARY_ORIGIN)
NO_CACHE_HEADERS = ((b"Cache-Control", NO_CACHE),)
_DUMMY_COOKIE = ((b"Set-Cookie", b"JSESSIONID=dummy; path=/"),)


def setCORS(
    request: IRequest, options: SockJSOptions, before: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """
    Add the CORS headers: the request's origin echoed with credentials allowed, or C{*}
    without credentials when there is no usable origin (none, junk, or a literal C{*}).

    :param before: Headers to set first, in the same call (see L{setHeaders}).
    """
    if options.disable_cors:
        if before:
            setHeaders(request, before)
        return
    rawOrigin = request.getHeader(b"origin")
    headers: tuple[tuple[bytes, bytes], ...]
    if rawOrigin is None:
        headers = _ANY_ORIGIN
    elif not originAllowed(rawOrigin, options):
        setHeaders(request, before + (_VARY_ORIGIN,))
        return
    else:
        origin = safeHeaderValue(rawOrigin)
        # A literal "*" is no origin: echoed with credentials it would be a combination
        # that browsers refuse and that means "anyone, with cookies".
        if origin and origin != b"*":
            headers = (
                (b"Access-Control-Allow-Origin", origin),
                (b"Access-Control-Allow-Credentials", b"true"),
                _VARY_ORIGIN,
            )
        else:
            headers = _ANY_ORIGIN
    allowHeaders = request.getHeader(b"access-control-request-headers")
    if allowHeaders is not None:
        allowHeaders = safeHeaderValue(allowHeaders)
        if allowHeaders:
            headers += ((b"Access-Control-Allow-Headers", allowHeaders),)
    setHeaders(request, before + headers if before else headers)


def setNoCache(request: IRequest) -> None:
    """
    Forbid caching: the answer is private and fresh.
    """
    setHeaders(request, NO_CACHE_HEADERS)


def setCacheForever(request: IRequest) -> None:
    """
    Allow caching for a year.
    """
    request.setHeader(b"Cache-Control", CACHE_FOREVER)
    request.setHeader(b"Expires", datetimeToString(time.time() + ONE_YEAR))
    request.setHeader(b"Access-Control-Max-Age", b"%d" % ONE_YEAR)


def setCookie(request: IRequest, options: SockJSOptions) -> None:
    """
    Set the C{JSESSIONID} cookie as the C{jsessionid} option asks.
    """
    policy = options.jsessionid
    if policy is False:
        return
    if policy is True:
        value = request.getCookie(b"JSESSIONID")
        if not value or safeHeaderValue(value) is None or b";" in value:
            setHeaders(request, _DUMMY_COOKIE)
        else:
            setHeaders(request, ((b"Set-Cookie", b"JSESSIONID=" + value + b"; path=/"),))
    else:
        policy(request)


TEXT_PLAIN_HEADERS = ((b"Content-Type", TEXT_PLAIN),)


def text(request: IRequest, code: int, body: str) -> bytes:
    """
    Answer with C{code} and a short plain-text body.
    """
    request.setResponseCode(code)
    setHeaders(request, TEXT_PLAIN_HEADERS)
    return body.encode("utf-8")


def notFound(request: IRequest) -> bytes:
    """
    Answer 404.
    """
    return text(request, 404, "Not found.")


def notAllowed(request: IRequest, allowed: bytes) -> bytes:
    """
    Answer 405 with an C{Allow} header, no body and no content type.
    """
    request.setResponseCode(405)
    request.setHeader(b"Allow", allowed)
    return b""


def answerOptions(request: IRequest, options: SockJSOptions, methods: bytes) -> bytes:
    """
    Answer a CORS preflight: 204, cacheable, allowing C{methods}.
    """
    request.setResponseCode(204)
    setCacheForever(request)
    setCORS(request, options)
    request.setHeader(b"Access-Control-Allow-Methods", methods)
    return b""


def connectionInfo(request: IRequest) -> ConnectionInfo:
    """
    What a session keeps of a receiving request.
    """
    headers: dict[str, str] = {}
    # One pass over the few headers the request has, not a look-up per exposed name.
    for rawName, values in request.requestHeaders.getAllRawHeaders():
        name = _EXPOSED_NAMES.get(rawName)
        if name is not None and values:
            headers[name] = values[-1].decode("latin-1")
    return ConnectionInfo(
        peer=request.getClientAddress(),
        host=request.getHost(),
        headers=headers,
        url=request.uri.decode("latin-1"),
    )


def _exposedNames() -> dict[bytes, str]:
    """
    The exposed header names (lower case) by the names C{getAllRawHeaders} gives for
    them: twisted.web's canonical form, whatever spelling the client sent.
    """
    names = {}
    for name in _EXPOSED:
        headers = Headers()
        headers.addRawHeader(name.encode("ascii"), b"")
        for rawName, _ in headers.getAllRawHeaders():
            names[rawName] = name
    return names


_EXPOSED_NAMES = _exposedNames()


class TransportResource(Resource):
    """
    One transport of one endpoint.  The router calls L{renderSession} with the session id
    from the URL; C{methods} maps HTTP methods to handler names.
    """

    isLeaf = True
    methods: ClassVar[dict[bytes, str]] = {}
    allowed: ClassVar[bytes] = b""

    def __init__(self, registry: SessionRegistry) -> None:
        super().__init__()
        self.registry = registry
        self.options = registry.options

    def renderSession(self, request: IRequest, sessionId: str) -> Any:
        """
        Dispatch on the method, setting the cookie first as sockjs-node does.
        """
        handler = self.methods.get(request.method)
        if handler is None:
            return notAllowed(request, self.allowed)
        options = self.options
        if options.allowed_origins is not None and not originAllowed(
            request.getHeader(b"origin"), options
        ):
            # A page of another origin may not even send: no side effects for it.
            request.setHeader(b"Vary", b"Origin")
            self.registry.observer.refused("origin")
            return text(request, 403, "Origin not allowed.")
        setCookie(request, options)
        return getattr(self, handler)(request, sessionId)

    def options_(self, request: IRequest, sessionId: str) -> bytes:
        return answerOptions(request, self.options, self.allowed)

    def receive(self, request: IRequest, sessionId: str, sink: ResponseSink) -> object:
        """
        Attach a receiving response to its session, opening the session if it is new.
        """
        info = connectionInfo(request)
        session = self.registry.getSession(sessionId)
        if session is None:
            self.registry.openSession(sessionId, sink, info)
        else:
            session.attach(sink, info)
        return NOT_DONE_YET


@implementer(ISessionSink, IPushProducer)
class ResponseSink:
    """
    An HTTP response that carries frames of one session.  A polling sink ends after one
    frame; a streaming one after C{response_limit} bytes of frames.  It follows the TCP
    connection as a producer, so a reader that stops reading stops the flow.
    """

    __slots__ = ("_request", "_session", "sinkPaused", "_done", "_sent", "_limit")

    protocolName: ClassVar[str] = ""
    streaming: ClassVar[bool] = False

    def __init__(self, request: IRequest, limit: int) -> None:
        # The sinks use what twisted.web's Request has beyond IRequest (notifyFinish,
        # producers).
        self._request = cast(Request, request)
        self._session: Optional[Session] = None
        self.sinkPaused = False
        self._done = False
        self._sent = 0
        self._limit = limit
        whenFinished(request, self._requestDone)
        if self.streaming:
            self._request.registerProducer(self, True)

    def start(self) -> None:
        """
        Write what precedes the first frame.
        """

    def wrap(self, frame: str) -> bytes:
        """
        Frame C{frame} for this transport.
        """
        raise NotImplementedError()

    # ISessionSink

    def bindSession(self, session: Session) -> None:
        self._session = session

    def writeFrame(self, frame: str) -> None:
        if self._done:
            return
        data = self.wrap(frame)
        request = self._request
        if self.streaming:
            self._sent += len(data)
            if self._sent < self._limit:
                request.write(data)
                return
        self._end(data)

    def writeMessages(self, quoted: list[str]) -> None:
        self.writeFrame(messageFrame(quoted))

    def finishSink(self, code: int, reason: str) -> None:
        if not self._done:
            self._done = True
            self._finishRequest()

    # IPushProducer, driven by the TCP connection

    def pauseProducing(self) -> None:
        self.sinkPaused = True

    def resumeProducing(self) -> None:
        self.sinkPaused = False
        session = self._session
        if session is not None and not self._done:
            session.resumeProducing()

    def stopProducing(self) -> None:
        self.sinkPaused = True

    # internals

    def _finishRequest(self, last: Optional[bytes] = None) -> None:
        """
        End the response, after C{last} if given: both in one write on a
        L{LeanRequest}.
        """
        request = self._request
        if self.streaming:
            request.unregisterProducer()
        if last is None:
            request.finish()
        elif isinstance(request, LeanRequest):
            request.writeLast(last)
        else:
            request.write(last)
            request.finish()

    def _end(self, last: bytes) -> None:
        """
        The response ends with C{last}, its last frame: the session is told.
        """
        self._done = True
        self._finishRequest(last)
        session = self._session
        if session is not None:
            session.detach(self, aborted=False)

    def _requestDone(self, result: object) -> None:
        if self._done:
            return
        self._done = True
        session = self._session
        if session is not None:
            session.detach(self, aborted=isinstance(result, Failure))
