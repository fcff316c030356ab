"""
Server options, with sockjs-node's names and defaults (times in seconds, as Twisted counts
them), validated once at construction.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Union, cast

import attr

__all__ = ["DEFAULT_SOCKJS_URL", "SockJSOptions"]

DEFAULT_SOCKJS_URL = "https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js"

JSessionIDPolicy = Union[bool, Callable[[Any], None]]
LogFunction = Callable[[str, str], None]


def _isNumber(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positiveNumber(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if not _isNumber(value) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{attribute.name} must be a positive number of seconds, not {value!r}")


def _positiveInt(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if type(value) is not int or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive integer, not {value!r}")


def _optionalPositiveInt(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if value is not None:
        _positiveInt(instance, attribute, value)


def _bool(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if type(value) is not bool:
        raise ValueError(f"{attribute.name} must be True or False, not {value!r}")


def _str(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{attribute.name} must be a string, not {value!r}")


def _prefix(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    _str(instance, attribute, value)
    assert isinstance(value, str)
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError(
            f"prefix must be empty or start with '/' and not end with '/', not {value!r}"
        )


def _jsessionid(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if type(value) is not bool and not callable(value):
        raise ValueError(f"jsessionid must be True, False or a callable, not {value!r}")


def _optionalCallable(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"{attribute.name} must be a callable or None, not {value!r}")


def _origins(instance: object, attribute: attr.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, str) or not all(isinstance(o, str) and o for o in value):  # type: ignore[attr-defined]
        raise ValueError(
            f"allowed_origins must be None or a list of origin strings, not {value!r}"
        )


def _tupleOrNone(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    return tuple(cast(Iterable[str], value))


@attr.s(frozen=True, slots=True, kw_only=True, auto_attribs=True)
class SockJSOptions:
    """
    The options of one SockJS endpoint.  Each has sockjs-node's name, meaning and default;
    times are in seconds.

    :ivar sockjs_url: The sockjs-client script the iframe page loads; use the same build as
        your page.
    :ivar prefix: The path the endpoint is served under (as given to sockjs-node's
        C{installHandlers}); L{SockJSFactory} mounts it there, and connections report it.
        Without it, connections report the path the endpoint is mounted at, from the
        request.
    :ivar response_limit: Bytes a streaming response may carry before it is closed so that
        the browser can free its memory; the client then opens a new one.
    :ivar websocket: Offer the websocket transports.
    :ivar jsessionid: Set a C{JSESSIONID} cookie for sticky load balancing: C{True}, or a
        callable given the request that sets whatever cookie it likes.
    :ivar log: C{callable(severity, message)}; by default messages go to
        L{twisted.logger}.
    :ivar heartbeat_delay: Seconds between heartbeat frames on an idle receiving connection.
    :ivar disconnect_delay: Seconds a session lives without a receiving connection.
    :ivar disable_cors: Send no CORS headers.
    :ivar max_message_size: Largest single message, in bytes, a client may send; a
        websocket sending more is closed with 1009.
    :ivar max_body_size: Largest C{xhr_send} / C{jsonp_send} body, in bytes; larger ones
        get 413.
    :ivar max_sessions: Most sessions open at once on this endpoint (C{None}: no limit).
    :ivar max_queue_size: Most memory, in bytes, a session's outgoing queue may hold while
        its client does not read; past it the session is closed with C{1013}.  Protocols
        that register a producer on their transport are paused long before (at 64 KiB).
        It must be at least twice C{max_body_size}, so that echoing everything one
        C{xhr_send} carries (quoting can double text) never closes a session.
    :ivar allowed_origins: C{None} allows every origin (sockjs-node's behaviour); a list of
        exact origins or patterns such as C{"https://*.example.com"} allows only those.
    """

    sockjs_url: str = attr.ib(default=DEFAULT_SOCKJS_URL, validator=_str)
    prefix: str = attr.ib(default="", validator=_prefix)
    response_limit: int = attr.ib(default=128 * 1024, validator=_positiveInt)
    websocket: bool = attr.ib(default=True, validator=_bool)
    jsessionid: JSessionIDPolicy = attr.ib(default=False, validator=_jsessionid)
    log: Optional[LogFunction] = attr.ib(default=None, validator=_optionalCallable)
    heartbeat_delay: float = attr.ib(default=25.0, validator=_positiveNumber)
    disconnect_delay: float = attr.ib(default=5.0, validator=_positiveNumber)
    disable_cors: bool = attr.ib(default=False, validator=_bool)
    max_message_size: int = attr.ib(default=1024 * 1024, validator=_positiveInt)
    max_body_size: int = attr.ib(default=1024 * 1024, validator=_positiveInt)
    max_sessions: Optional[int] = attr.ib(default=None, validator=_optionalPositiveInt)
    max_queue_size: int = attr.ib(default=4 * 1024 * 1024, validator=_positiveInt)
    allowed_origins: Optional[tuple[str, ...]] = attr.ib(
        default=None, converter=_tupleOrNone, validator=_origins
    )

    def __attrs_post_init__(self) -> None:
        if self.max_queue_size < 2 * self.max_body_size:
            raise ValueError(
                f"max_queue_size ({self.max_queue_size}) must be at least twice "
                f"max_body_size ({self.max_body_size}): the echo of a whole body must fit "
                f"in the outgoing queue"
            )
