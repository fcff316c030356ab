"""
sockjs_twisted: a SockJS server for Twisted.

Wrap an ordinary protocol factory: C{SockJSFactory(MyFactory())} for C{listenTCP}, or
C{SockJSResource(MyFactory())} to mount beside other resources.
"""

from ._factory import SockJSFactory, SockJSSite
from ._options import SockJSOptions
from ._registry import SessionRegistry
from ._resource import SockJSResource
from ._session import CLOSED, CLOSING, CONNECTING, OPEN
from .interfaces import ISockJSTransport

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "ISockJSTransport",
    "SessionRegistry",
    "SockJSFactory",
    "SockJSOptions",
    "SockJSResource",
    "SockJSSite",
]
