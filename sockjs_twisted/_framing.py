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
    "PayloadExpected",
    "closeFrame",
    "decodeHTTPPayload",
    "decodeWebSocketPayload",
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
    try:
        return [m.encode("utf-8") for m in messages]  # type: ignore[attr-defined]
    except AttributeError:
        raise BrokenFraming("messages must be strings") from None
    except UnicodeEncodeError:
        raise BrokenFraming("a message holds a lone surrogate") from None


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
