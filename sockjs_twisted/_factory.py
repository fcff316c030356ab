"""
L{SockJSFactory}: a twisted.web Site serving one SockJS endpoint, ready for C{listenTCP}
or C{endpoint.listen}.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.web.resource import Resource
from twisted.web.server import Site

from ._resource import SockJSResource

__all__ = ["SockJSFactory", "SockJSSite", "mount"]


def mount(root: Resource, prefix: str, child: Resource) -> None:
    """
    Put C{child} at C{prefix} (C{"/a/b"}) below C{root}, creating plain resources on the
    way.
    """
    segments = [s.encode("utf-8") for s in prefix.strip("/").split("/")]
    node = root
    for segment in segments[:-1]:
        nxt = node.children.get(segment)
        if nxt is None:
            nxt = Resource()
            node.putChild(segment, nxt)
        node = nxt
    node.putChild(segments[-1], child)


class SockJSSite(Site):
    """
    A Site for SockJS: no traceback pages, no access log (one line per poll would drown
    everything else; subclass and override C{log} to have one).
    """

    displayTracebacks = False

    def log(self, request: Any) -> None:
        pass


class SockJSFactory(SockJSSite):
    """
    Serve C{factory}'s protocols to SockJS clients: C{listenTCP(8081,
    SockJSFactory(MyFactory()))}.  The endpoint is served at the C{prefix} option (the
    root by default).  The wrapped factory's C{doStart}/C{doStop} follow this one's.

    :ivar resource: The L{SockJSResource} (also reachable as C{endpoint}).
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        reactor: Optional[IReactorTime] = None,
        **options: Any,
    ) -> None:
        self.endpoint = SockJSResource(factory, reactor=reactor, **options)
        prefix = self.endpoint.options.prefix
        root: Resource
        if prefix:
            root = Resource()
            mount(root, prefix, self.endpoint)
        else:
            root = self.endpoint
        super().__init__(root, reactor=reactor)

    def startFactory(self) -> None:
        super().startFactory()
        self.endpoint.sessions.start()

    def stopFactory(self) -> None:
        self.endpoint.stop()
        super().stopFactory()
