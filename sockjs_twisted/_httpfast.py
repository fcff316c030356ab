"""
A faster way in for the HTTP requests that dominate a SockJS server.

twisted.web's ``HTTPChannel`` parses a request line by line: ``LineReceiver`` splits
each line off its buffer, ``lineReceived`` and ``headerReceived`` look at it,
``Headers.addRawHeader`` canonicalises the name and sanitises the value, and a body
goes through a transfer decoder object.  For an xhr poll or an ``xhr_send`` that is a
third of the server's work.

:func:`receive` takes the common case in one pass: a read that holds a whole request
head (request line and header fields, within the size limits) and, when there is a
``Content-Length``, the whole body.  The head is split and checked with bytes methods
(regular expressions cost more on PyPy), accepting only a subset of what twisted.web
accepts (RFC 9112 request line, token header names right before the colon, no line
folding, header values of tabs, spaces and visible or non-ASCII characters; no
``Transfer-Encoding``, no ``Expect``, at most one ``Content-Length`` of digits), and the
channel is then driven through the same steps, in the same order, as twisted.web's own
path: the request is made by the channel's ``requestFactory``, its headers are the ones
``addRawHeader`` would have stored, and
``allHeadersReceived``, ``handleContentChunk``, ``_finishRequestBody`` and
``allContentReceived`` are called as twisted.web calls them (so the channel's own rules,
such as the ``Host`` checks of :class:`sockjs_twisted._factory._SockJSChannel`, and
pipelining, persistence and timeouts are twisted.web's).  What follows the request in
the read (the next pipelined request, or the websocket frames behind an upgrade) is
where twisted.web would have left it: the next request takes the same way if it can,
and everything else goes to twisted.web's parser, which also gets every read this
module does not take, bytes untouched.  ``tests/test_httpfast.py`` feeds generated
request streams, split at every point, to a channel with and without this path and
compares what the resource sees and every byte written.

This leans on twisted.web internals (the channel's parser state and
``Headers._rawHeaders``): :data:`SUPPORTED` says whether the installed Twisted has them
as expected, and the channel uses twisted.web's path alone when it does not.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.protocols.basic import LineReceiver
from twisted.web.http import HTTPChannel
from twisted.web.http import Request as HTTPRequest
from twisted.web.http_headers import Headers
from twisted.web.iweb import INonQueuedRequestFactory

from ._leanweb import LeanRequest

try:
    from twisted.web.http_headers import _nameEncoder
except ImportError:  # an older Twisted: twisted.web's parser alone
    _nameEncoder = None  # type: ignore[assignment]

__all__ = ["SUPPORTED", "parseHead", "receive"]

# RFC 9110 token characters; visible ASCII (a request target); what a head may hold
# (tabs, line ends, visible or non-ASCII characters, spaces).
_TOKEN = b"-!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VISIBLE = bytes(range(0x21, 0x7F))
_HEAD_BYTES = b"\t\r\n" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))

_MAX_NAMES = 1000


def _twistedNames() -> Optional[dict[Any, bytes]]:
    """
    twisted.web's own cache of canonical header names (raw name to canonical name), if
    its name encoder keeps one this module can read as its own: a dict holding only
    names that are tokens (the encoder refuses the others), bounded by the encoder.
    """
    cache = getattr(_nameEncoder, "_canonicalHeaderCache", None)
    if type(cache) is not dict:
        return None
    try:
        _nameEncoder.encode(b"not a token")
    except ValueError:
        pass
    else:
        return None  # it takes any name: its cache may hold what parseHead refuses
    if _nameEncoder.encode(b"content-length") != b"Content-Length":
        return None
    if cache.get(b"content-length") != b"Content-Length":
        return None
    return cache


# Raw header names as sent, canonicalised by twisted.web's own encoder: its own cache
# where it has one that fits, else one of this module's, bounded (like the encoder's)
# against clients inventing names.
_ownNames: dict[Any, bytes] = {}
_twistedCache = _twistedNames() if _nameEncoder is not None else None
_names: dict[Any, bytes] = _ownNames if _twistedCache is None else _twistedCache

# (method, target, version, headers as Headers._rawHeaders holds them, body length,
# offset of the body)
Head = tuple[bytes, bytes, bytes, dict[bytes, list[bytes]], int, int]


def _canonical(name: bytes) -> bytes:
    # (Twisted's encoder keeps the name in its cache itself.)
    canonical: bytes = _nameEncoder.encode(name)
    if _names is _ownNames and len(_ownNames) < _MAX_NAMES:
        _ownNames[name] = canonical
    return canonical


def parseHead(data: bytes, maxLine: int, maxTotal: int, maxHeaders: int) -> Optional[Head]:
    """
    Parse the request at the start of C{data} if this module can take it.

    :param data: What the channel has to parse, starting at a request line.
    :param maxLine: No line of the head may be longer (C{LineReceiver.MAX_LENGTH}).
    :param maxTotal: The lines of the head, without their line ends, may not be longer
        together (C{HTTPChannel.totalHeadersSize}).
    :param maxHeaders: At most this many header fields.
    :return: The request's parts, or C{None} for a request twisted.web must parse: an
        incomplete head or body, anything over the limits, or anything not in the
        subset described in the module docstring.
    """
    # The longest head within the limits has maxHeaders fields: look no further.
    end = data.find(b"\r\n\r\n", 0, maxTotal + 2 * maxHeaders + 4)
    if end < 0:
        return None
    head = data[:end]
    lines = head.split(b"\r\n")
    n = len(lines)
    # No control characters, and no CR or LF but in the line ends.
    if (
        n > maxHeaders + 1
        or head.translate(None, _HEAD_BYTES)
        or head.count(b"\n") != n - 1
        or head.count(b"\r") != n - 1
    ):
        return None
    end += 4
    if end > maxLine or end > maxTotal:
        if max(map(len, lines)) > maxLine or sum(map(len, lines)) > maxTotal:
            return None
    # The request line: a token, a target of visible ASCII, HTTP/1.0 or HTTP/1.1, with
    # one space between them.
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if (
        (version != b"HTTP/1.1" and version != b"HTTP/1.0")
        or not method
        or method.translate(None, _TOKEN)
        or not target
        or target.translate(None, _VISIBLE)
    ):
        return None
    # Header fields: a token right before the colon (a field that begins with a blank
    # is a folded line, whose name is no token), and the value without the blanks
    # around it (twisted.web's strip(b" \t")).
    raw: dict[bytes, list[bytes]] = {}
    names = _names
    for i in range(1, n):
        name, colon, value = lines[i].partition(b":")
        if not colon:
            return None
        canonical = names.get(name)
        if canonical is None:
            if not name or name.translate(None, _TOKEN):
                return None
            canonical = _canonical(name)
        value = value.strip(b" \t")
        values = raw.get(canonical)
        if values is None:
            raw[canonical] = [value]
        else:
            values.append(value)
    if b"Transfer-Encoding" in raw or b"Expect" in raw:
        return None
    lengths = raw.get(b"Content-Length")
    if lengths is None:
        return method, target, version, raw, 0, end
    if len(lengths) != 1 or not lengths[0].isdigit():
        return None
    length = int(lengths[0])
    if end + length > len(data):
        return None
    return method, target, version, raw, length, end


# Request factories (classes, as a rule): do they provide INonQueuedRequestFactory?  On
# PyPy, asking zope.interface about a subclass of twisted.web's Request raises and
# catches an AttributeError inside it every time.
_nonQueued: dict[Any, bool] = {}
_MAX_FACTORIES = 100


def _isNonQueued(factory: Any) -> bool:
    try:
        nonQueued = _nonQueued.get(factory)
    except TypeError:  # not hashable: asked each time
        return bool(INonQueuedRequestFactory.providedBy(factory))
    if nonQueued is None:
        nonQueued = bool(INonQueuedRequestFactory.providedBy(factory))
        if len(_nonQueued) < _MAX_FACTORIES:
            _nonQueued[factory] = nonQueued
    return nonQueued


def _between(channel: Any) -> bool:
    # Line mode, no request begun (and no stray empty line eaten), a connection that
    # still takes requests, nothing refused, nothing paused.
    transport = channel.transport
    return bool(
        channel.line_mode
        and channel._HTTPChannel__first_line == 1
        and channel.persistent
        and not channel.paused
        and not channel.refused
        and not (transport and transport.disconnecting)
    )


def receive(channel: Any, data: bytes) -> bool:
    """
    Serve the requests at the start of C{data}, as twisted.web's C{HTTPChannel} would,
    and hand whatever else the read holds to twisted.web's parser.

    :param channel: A :class:`sockjs_twisted._factory._SockJSChannel`.
    :param data: One read from the network.
    :return: C{False}, having done nothing, if the read does not start with a request
        this module takes or the channel is not between requests; the caller then
        passes the read to twisted.web.
    """
    if channel._busyReceiving or channel._buffer or not _between(channel):
        return False
    maxLine = channel.MAX_LENGTH
    maxTotal = channel.totalHeadersSize
    maxHeaders = channel.maxHeaders
    head = parseHead(data, maxLine, maxTotal, maxHeaders)
    if head is None:
        return False
    inlineHeaders = _inlineHeaders.get(type(channel))
    if inlineHeaders is None:
        inlineHeaders = _inlineHeaders[type(channel)] = _canInlineHeaders(type(channel))
    # HTTPChannel.dataReceived resets the idle timeout here; every request taken below
    # then stops it (allContentReceived, or a refusal), so that is left out.
    # As LineReceiver.dataReceived: what arrives while a request is being handled (the
    # replay of pipelined requests by requestDone) is only added to the buffer.
    channel._busyReceiving = True
    try:
        while True:
            method, target, version, raw, length, end = head
            factory = channel.requestFactory
            if _isNonQueued(factory):
                request = factory(channel)
            else:
                request = factory(channel, len(channel.requests))
            channel.requests.append(request)
            headers = request.requestHeaders
            if type(headers) is Headers and not headers._rawHeaders:
                headers._rawHeaders = raw
            else:
                for name, values in raw.items():
                    for value in values:
                        headers.addRawHeader(name, value)
            channel._command = method
            channel._path = target
            channel._version = version
            channel.length = length
            # Where LineReceiver leaves the rest of the read once the empty line is
            # split off: a refusal discards it, an upgrade takes it from here.
            channel._buffer = data[end:]
            if inlineHeaders:
                # _SockJSChannel.allHeadersReceived and HTTPChannel's, for a request
                # without Expect, from the headers parseHead has found.
                channel._inHead = False
                if not channel._refuseHost(raw.get(b"Host")):
                    if b"Cookie" in raw or type(request).parseCookies not in _COOKIES_ONLY:
                        request.parseCookies()
                    if b"Connection" in raw:
                        channel.persistent = channel.checkPersistence(request, version)
                    else:
                        channel.persistent = version == b"HTTP/1.1"
                    request.gotLength(length)
            else:
                channel.allHeadersReceived()
            whole = channel.length == 0
            if whole:
                channel.allContentReceived()
            else:
                channel.setRawMode()
            # Where LineReceiver stops, the line that ends the head handled.
            transport = channel.transport
            if transport and transport.disconnecting:
                return True
            if not whole:
                rest = channel._buffer
                if not rest:
                    break  # refused: the refusal has discarded it
                channel._buffer = b""
                # What the identity transfer decoder does with a whole body.
                request.handleContentChunk(rest[:length])
                channel._finishRequestBody(rest[length:])
            data = channel._buffer
            if not data or not _between(channel):
                break
            head = parseHead(data, maxLine, maxTotal, maxHeaders)
            if head is None:
                break
    finally:
        channel._busyReceiving = False
    if channel._buffer:
        # The rest of the read, in whatever state the channel is now: twisted.web's.
        LineReceiver.dataReceived(channel, b"")
    return True


def _fingerprint(function: Any) -> tuple[Any, ...]:
    code = function.__code__
    return code.co_names, tuple(c for c in code.co_consts if isinstance(c, bytes))


# twisted.web's allHeadersReceived and checkPersistence as this module knows them (the
# same from Twisted 22.10 to 26.10): the names they use and their bytes constants.
_ALL_HEADERS_RECEIVED = (
    (
        "requests",
        "parseCookies",
        "checkPersistence",
        "_version",
        "persistent",
        "gotLength",
        "length",
        "requestHeaders",
        "getRawHeaders",
        "lower",
        "_send100Continue",
    ),
    (b"Expect", b"100-continue", b"HTTP/1.1"),
)
_CHECK_PERSISTENCE = (
    ("requestHeaders", "getRawHeaders", "split", "responseHeaders", "setRawHeaders"),
    (b"Connection", b" ", b"HTTP/1.1", b"close"),
)

# parseCookies methods that do nothing for a request without a Cookie header, so that
# this module's look for one is the only one.
_COOKIES_ONLY = (HTTPRequest.parseCookies, LeanRequest.parseCookies)

# Channel classes: may allHeadersReceived be done inline?
_inlineHeaders: dict[type, bool] = {}


def _canInlineHeaders(channelClass: type) -> bool:
    """
    Are C{channelClass}'s C{allHeadersReceived} and C{checkPersistence} the ones
    :func:`receive` does inline (L{_SockJSChannel}'s over twisted.web's)?
    """
    from ._factory import _SockJSChannel

    return (
        getattr(channelClass, "allHeadersReceived", None) is _SockJSChannel.allHeadersReceived
        and getattr(channelClass, "checkPersistence", None) is HTTPChannel.checkPersistence
        and _fingerprint(HTTPChannel.allHeadersReceived) == _ALL_HEADERS_RECEIVED
        and _fingerprint(HTTPChannel.checkPersistence) == _CHECK_PERSISTENCE
    )


def _twistedFits() -> bool:
    """
    Does the installed Twisted keep the internals this module uses, as it expects them?
    """
    if _nameEncoder is None:
        return False
    try:
        headers = Headers()
        headers.addRawHeader(b"x-fast", b"v")
        if headers._rawHeaders != {b"X-Fast": [b"v"]}:
            return False
        if _nameEncoder.encode(b"content-length") != b"Content-Length":
            return False
        channel = HTTPChannel()
        if channel._HTTPChannel__first_line != 1:  # type: ignore[attr-defined]
            return False
    except Exception:
        return False
    needed = (
        "_busyReceiving",
        "_buffer",
        "line_mode",
        "paused",
        "persistent",
        "length",
        "maxHeaders",
        "requests",
        "_finishRequestBody",
        "allHeadersReceived",
        "allContentReceived",
        "setRawMode",
    )
    # The request line's parts, which receive sets where allContentReceived reads them.
    read = HTTPChannel.allContentReceived.__code__.co_names
    return all(hasattr(channel, name) for name in needed) and all(
        name in read for name in ("_command", "_path", "_version")
    )


SUPPORTED: bool = _twistedFits()
"""
Does the installed Twisted have the internals :func:`receive` drives?
"""
