"""
L{SockJSFactory}: a twisted.web Site serving one SockJS endpoint, ready for C{listenTCP}
or C{endpoint.listen}.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IReactorTime
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

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


class _BoundedRequest(Request):
    """
    A request that must arrive whole (headers and body) within the site's
    C{requestTimeout}, with a body no larger than the site's C{maxBodySize}; otherwise the
    client gets a one-line 408 or 413 and the connection is closed.
    """

    site: SockJSSite

    def __init__(self, channel: Any, *args: Any, **kw: Any) -> None:
        super().__init__(channel, *args, **kw)
        site: SockJSSite = channel.site
        self._bodyReceived = 0
        self._refused = False
        self._deadline: Optional[IDelayedCall] = site.reactor.callLater(
            site.requestTimeout, self._refuse, 408, "Request Timeout", "Request too slow."
        )

    def _site(self) -> SockJSSite:
        site: SockJSSite = self.channel.site  # type: ignore[attr-defined]
        return site

    def _cancelDeadline(self) -> None:
        deadline = self._deadline
        if deadline is not None:
            self._deadline = None
            if deadline.active():
                deadline.cancel()

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > self._site().maxBodySize:
            self._refuse(413, "Payload Too Large", "Payload too large.")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._bodyReceived += len(data)
        if self._bodyReceived > self._site().maxBodySize:
            self._refuse(413, "Payload Too Large", "Payload too large.")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._cancelDeadline()
        if self._refused:
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        self._cancelDeadline()
        super().connectionLost(reason)

    def _refuse(self, code: int, phrase: str, body: str) -> None:
        self._deadline = None
        if self._refused:
            return
        self._refused = True
        channel = self.channel
        transport = channel.transport
        if transport is None or self.startedWriting:
            return
        data = body.encode("ascii") + b"\n"
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (code, phrase.encode("ascii"), len(data), data)
        )
        channel.loseConnection()


class SockJSSite(Site):
    """
    A Site for SockJS.  No traceback pages; no access log (one line per poll would drown
    everything else: subclass and override C{log} to have one).  Requests are bounded:
    a body over C{maxBodySize} gets 413, a request not received whole within
    C{requestTimeout} seconds gets 408 (header and body trickling), and an idle
    connection is closed after C{idleTimeout} seconds.
    """

    displayTracebacks = False
    requestFactory = _BoundedRequest

    def __init__(
        self,
        resource: Resource,
        reactor: Optional[IReactorTime] = None,
        maxBodySize: int = 1024 * 1024,
        requestTimeout: float = 30,
        idleTimeout: float = 60,
    ) -> None:
        """
        :param resource: The root resource.
        :param reactor: The reactor; the global one by default.
        :param maxBodySize: Largest request body accepted, in bytes.
        :param requestTimeout: Seconds a client has to send a whole request.
        :param idleTimeout: Seconds an idle keep-alive connection is kept.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor  # type: ignore[assignment]
        super().__init__(
            resource, reactor=reactor, timeout=idleTimeout, parsePOSTFormSubmission=False
        )
        self.maxBodySize = maxBodySize
        self.requestTimeout = requestTimeout

    def log(self, request: Any) -> None:
        pass


class SockJSFactory(SockJSSite):
    """
    Serve C{factory}'s protocols to SockJS clients: C{listenTCP(8081,
    SockJSFactory(MyFactory()))}.  The endpoint is served at the C{prefix} option (the
    root by default).  The wrapped factory's C{doStart}/C{doStop} follow this one's, and
    stopping it closes every session with C{1001 "Server shutting down"}.

    :ivar endpoint: The L{SockJSResource}.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        reactor: Optional[IReactorTime] = None,
        **options: Any,
    ) -> None:
        """
        :param factory: An ordinary protocol factory; each SockJS session gets one of its
            protocols.
        :param reactor: The reactor; the global one by default.
        :param options: See L{SockJSOptions}; C{max_body_size} also bounds request bodies
            for the whole site.
        """
        self.endpoint = SockJSResource(factory, reactor=reactor, **options)
        prefix = self.endpoint.options.prefix
        root: Resource
        if prefix:
            root = Resource()
            mount(root, prefix, self.endpoint)
        else:
            root = self.endpoint
        super().__init__(root, reactor=reactor, maxBodySize=self.endpoint.options.max_body_size)

    def startFactory(self) -> None:
        super().startFactory()
        self.endpoint.sessions.start()

    def stopFactory(self) -> None:
        self.endpoint.stop()
        super().stopFactory()
