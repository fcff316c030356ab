"""
The one decoder of what a SockJS server sends, for every client in this code base: the
C{o}, C{h}, C{a[...]} and C{c[code,"reason"]} frames, and the encoding of what a client
sends (a JSON array of strings).

Pure and Twisted-free, like L{sockjs_twisted._framing}, whose strict JSON scanner it uses.
"""

from __future__ import annotations

import json
from typing import Union

import attr

from .._framing import BrokenFraming, _parse

__all__ = [
    "Close",
    "FrameError",
    "Heartbeat",
    "Messages",
    "Open",
    "decodeFrame",
    "decodeMessage",
    "encodeMessage",
    "encodeMessages",
]


class FrameError(ValueError):
    """
    Text that is not a SockJS frame.
    """


@attr.s(frozen=True, auto_attribs=True)
class Open:
    """
    The open frame, C{o}: the session is open.
    """


@attr.s(frozen=True, auto_attribs=True)
class Heartbeat:
    """
    A heartbeat frame, C{h}.
    """


@attr.s(frozen=True, auto_attribs=True)
class Messages:
    """
    A message frame, C{a[...]}.

    :ivar messages: The messages, as JSON decoded them (lone surrogates included).
    """

    messages: tuple[str, ...]


@attr.s(frozen=True, auto_attribs=True)
class Close:
    """
    A close frame, C{c[code,"reason"]}.
    """

    code: int
    reason: str


Frame = Union[Open, Heartbeat, Messages, Close]

_OPEN = Open()
_HEARTBEAT = Heartbeat()


def _json(payload: str) -> object:
    try:
        return _parse(payload)
    except BrokenFraming as e:
        raise FrameError(str(e)) from None


def decodeFrame(frame: str) -> Frame:
    """
    Decode one SockJS frame, as a server sends it (without the line end of the HTTP
    transports).

    :raise FrameError: C{frame} is not a SockJS frame.
    """
    if frame == "o":
        return _OPEN
    if frame == "h":
        return _HEARTBEAT
    kind, payload = frame[:1], frame[1:]
    if kind == "a":
        messages = _json(payload)
        if type(messages) is not list or not all(type(m) is str for m in messages):
            raise FrameError(f"broken message frame {frame[:80]!r}")
        return Messages(tuple(messages))
    if kind == "c":
        close = _json(payload)
        if (
            type(close) is not list
            or len(close) != 2
            or type(close[0]) is not int
            or type(close[1]) is not str
        ):
            raise FrameError(f"broken close frame {frame[:80]!r}")
        return Close(close[0], close[1])
    raise FrameError(f"unknown frame {frame[:80]!r}")


def decodeMessage(data: bytes) -> str:
    """
    The text of one message a protocol writes: UTF-8, lone surrogates allowed (JSON and
    JavaScript strings carry them).

    :raise TypeError: C{data} is not bytes.
    :raise ValueError: C{data} is not UTF-8.
    """
    if type(data) is not bytes:
        raise TypeError(f"write() takes bytes (one UTF-8 message), not {type(data).__name__}")
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as e:
        raise ValueError(f"write() takes UTF-8 text: {e}") from None


def encodeMessage(text: str) -> bytes:
    """
    One received message as the bytes a protocol's C{dataReceived} gets.
    """
    return text.encode("utf-8", "surrogatepass")


def encodeMessages(messages: list[str]) -> bytes:
    """
    The payload of an C{xhr_send} or of a websocket message: a JSON array of strings, all
    ASCII (every other character C{\\u}-escaped, as sockjs-client does for the ones that
    proxies mangle).
    """
    return json.dumps(messages).encode("ascii")
