"""
sockjs_twisted: a SockJS server for Twisted.

Wrap an ordinary protocol factory: C{SockJSFactory(MyFactory())} for C{listenTCP}, or
C{SockJSResource(MyFactory())} to mount beside other resources.
"""

from ._factory import SockJSFactory, SockJSSite
from ._options import SockJSOptions
from ._registry import SessionFactory
from ._resource import SockJSResource
from .interfaces import ISockJSTransport

__all__ = [
    "ISockJSTransport",
    "SessionFactory",
    "SockJSFactory",
    "SockJSOptions",
    "SockJSResource",
    "SockJSSite",
]
