"""
SockJS framing, free of Twisted: the frames a server sends, the JSON escaping browsers need,
the decoding of what clients send, and the validation of JSONP callback names.

Text is ``str`` in here; bytes only at the two edges (a user's message in, a payload out).
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

__all__ = [
    "HEARTBEAT_FRAME",
    "OPEN_FRAME",
    "BrokenFraming",
    "IncompleteUTF8",
    "PayloadExpected",
    "closeFrame",
    "decodeHTTPPayload",
    "decodeWebSocketPayload",
    "decodeWritten",
    "isValidCallback",
    "jsString",
    "messageFrame",
    "quoteMessage",
]

OPEN_FRAME = "o"
HEARTBEAT_FRAME = "h"

# Characters that browsers, proxies or JavaScript engines mangle when they travel unescaped:
# zero-width and bidi controls, line/paragraph separators, invisible operators, the BOM,
# specials, and lone surrogates (which UTF-8 cannot carry at all).  The ASCII controls and
# the JSON specials are already escaped by encode_basestring.
_SERVER_ESCAPABLE = re.compile(
    "[\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufeff\ufff0-\uffff\ud800-\udfff]"
)

# What may appear in a JavaScript string literal that sits inside an HTML <script>
# element (htmlfile) or a script served as JavaScript (JSONP) without being able to end
# the element or start markup.
_SCRIPT_UNSAFE = re.compile("[<>&]")

_CALLBACK = re.compile("[a-zA-Z0-9_.\\-]+")
_MAX_CALLBACK_LENGTH = 256


def _unicodeEscape(match: re.Match[str]) -> str:
    return "\\u%04x" % ord(match.group())


def quoteMessage(text: str) -> str:
    """
    Quote one message as a JSON string literal that every browser decodes back to C{text}.

    :param text: The message.
    :return: A JSON string literal, quotes included.
    """
    quoted: str = encode_basestring(text)
    if text.isascii():
        return quoted
    return _SERVER_ESCAPABLE.sub(_unicodeEscape, quoted)


def messageFrame(quoted: list[str]) -> str:
    """
    Build an C{a[...]} frame from messages already quoted by L{quoteMessage}.
    """
    return "a[" + ",".join(quoted) + "]"


def closeFrame(code: int, reason: str) -> str:
    """
    Build a C{c[code,"reason"]} close frame.
    """
    return "c[%d,%s]" % (code, quoteMessage(reason))


def jsString(frame: str) -> str:
    """
    Quote a frame as a JavaScript string literal that is safe inside an HTML C{<script>}
    element and in a JSONP response: no C{<}, C{>} or C{&} survive unescaped.
    """
    quoted: str = encode_basestring(frame)
    return _SCRIPT_UNSAFE.sub(_unicodeEscape, quoted)


def isValidCallback(name: str) -> bool:
    """
    Is C{name} an acceptable JSONP / htmlfile callback: only C{[a-zA-Z0-9-_.]}, not empty,
    not absurdly long?
    """
    return len(name) <= _MAX_CALLBACK_LENGTH and _CALLBACK.fullmatch(name) is not None


class BrokenFraming(ValueError):
    """
    A client payload that is not what SockJS framing allows.
    """

    message = "Broken JSON encoding."


class PayloadExpected(BrokenFraming):
    """
    A client payload that is empty.
    """

    message = "Payload expected."


def _rejectConstant(name: str) -> object:
    raise BrokenFraming(f"{name} is not JSON")


_decoder = json.JSONDecoder(parse_constant=_rejectConstant)


_scan = _decoder.scan_once  # type: ignore[attr-defined]


def _parse(payload: str) -> object:
    try:
        # The C scanner itself; JSONDecoder.decode adds two regex matches around it.
        value, end = _scan(payload, 0)
    except StopIteration:
        value, end = None, -1
    except (ValueError, RecursionError) as e:
        raise BrokenFraming(str(e)) from None
    if end == len(payload):
        return value
    # Leading or trailing whitespace, or something that is not JSON at all.
    try:
        return _decoder.decode(payload)
    except (ValueError, RecursionError) as e:
        raise BrokenFraming(str(e)) from None


def _encodeAll(messages: list[Any]) -> list[bytes]:
    # A JSON string may hold lone surrogates ("\ud800"): JavaScript strings can, and
    # sockjs-client sends them escaped.  They pass through as UTF-8 with surrogates
    # ('surrogatepass'), so that echoing a message gives the client the same string.
    try:
        return [m.encode("utf-8", "surrogatepass") for m in messages]  # type: ignore[attr-defined]
    except AttributeError:
        raise BrokenFraming("messages must be strings") from None


class IncompleteUTF8(ValueError):
    """
    Written bytes that end in the first part of a UTF-8 character: the rest may come
    with the next write.

    :ivar start: Where the incomplete character starts.
    """

    def __init__(self, start: int) -> None:
        super().__init__(f"incomplete UTF-8 character at byte {start}")
        self.start = start


# Bytes after a lead byte that a character of that lead byte needs (0: not a lead byte).
_UTF8_LENGTH = bytes(
    2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 0
    for b in range(256)
)


def _isPrefix(tail: bytes, errors: str) -> bool:
    """
    Can C{tail} (at the end of a write) still become a character with more bytes?
    """
    need = _UTF8_LENGTH[tail[0]]
    if not 0 < len(tail) < need:
        return False
    if len(tail) == 1:
        return True
    # Complete it with the lowest continuation bytes; whatever follows the second byte
    # is free, so this decodes exactly when the tail is the start of a character.
    try:
        (tail + b"\x80" * (need - len(tail))).decode("utf-8", errors)
    except UnicodeDecodeError:
        return False
    return True


def decodeWritten(data: bytes, surrogates: bool) -> str:
    """
    Decode one message that a protocol wrote.

    :param data: UTF-8 text.
    :param surrogates: Accept lone surrogates (UTF-8 with C{'surrogatepass'}), which
        SockJS framing escapes as C{\\udXXX}; raw websockets, whose text must be valid
        UTF-8, cannot carry them.
    :raise TypeError: C{data} is not bytes.
    :raise IncompleteUTF8: C{data} is text that ends in part of a character.
    :raise ValueError: C{data} holds bytes that can never be UTF-8 text.
    """
    if type(data) is not bytes:
        raise TypeError(
            f"transport.write() takes bytes (one UTF-8 message), not {type(data).__name__}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    errors = "surrogatepass" if surrogates else "strict"
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        error = e
    if len(data) - error.start < 4 and _isPrefix(data[error.start :], errors):
        raise IncompleteUTF8(error.start)
    raise ValueError(f"transport.write() takes UTF-8 text: {error}")


def decodeHTTPPayload(payload: bytes) -> list[bytes]:
    """
    Decode the body of an C{xhr_send} / C{jsonp_send}: a JSON array of strings.

    :return: The messages, UTF-8 encoded, in order.
    :raise PayloadExpected: The payload is empty.
    :raise BrokenFraming: The payload is not a JSON array of strings in UTF-8.
    """
    if not payload:
        raise PayloadExpected("empty payload")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BrokenFraming("payload is not UTF-8") from None
    messages = _parse(text)
    if type(messages) is not list:
        raise BrokenFraming("payload is not a JSON array")
    return _encodeAll(messages)


def decodeWebSocketPayload(payload: str) -> list[bytes]:
    """
    Decode one SockJS websocket message: a JSON array of strings or a single JSON string.
    An empty payload carries no message.

    :return: The messages, UTF-8 encoded, in order.
    :raise BrokenFraming: The payload is anything else.
    """
    if not payload:
        return []
    if payload.startswith('["') and payload.endswith('"]'):
        # One plain ASCII message, the commonest payload: no JSON needed.
        inner = payload[2:-2]
        if inner.isascii() and inner.isprintable() and '"' not in inner and "\\" not in inner:
            return [inner.encode("ascii")]
    messages = _parse(payload)
    if type(messages) is str:
        messages = [messages]
    elif type(messages) is not list:
        raise BrokenFraming("payload is neither a JSON array nor a string")
    return _encodeAll(messages)
