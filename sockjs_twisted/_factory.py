"""
L{SockJSFactory}: a twisted.web Site serving one SockJS endpoint, ready for C{listenTCP}
or C{endpoint.listen}; L{SockJSSite}: the bounded Site under it, for trees of your own.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IProtocolFactory,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _ChunkedTransferDecoder
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import alsoProvides

from . import _httpfast
from ._deadline import waitRest
from ._leanweb import SUPPORTED as _LEAN_SUPPORTED
from ._leanweb import LeanRequest
from ._resource import SockJSResource
from ._writethrough import adopt
from .metrics import NULL_OBSERVER, NullObserver

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


class _SockJSChannel(HTTPChannel):
    """
    twisted.web's HTTP/1.1 channel, answering what it would drop without a word or with a
    bare 400: every refused request gets a status, a one-line body and
    C{Connection: close}, then a lingering close.

    Limits: a request line longer than C{MAX_LENGTH} (16 KiB) gets 414; a header line
    longer than that, or a request line and headers together over C{totalHeadersSize}
    (16 KiB, twisted.web's and Node's default), get 431.  An HTTP/1.1 request without
    exactly one C{Host} header gets 400 (RFC 9112, section 3.2), as does anything else
    twisted.web cannot parse.  A chunk-size line announcing a body larger than the site's
    C{maxBodySize} gets 413 at once.

    Lingering close, as nginx and Apache do it: after the answer nothing more is written
    (the write side is shut down where the transport can do that), and what the client
    still sends is read and thrown away, so that it is not reset while sending and can
    read the answer.  The connection is closed (the answer sent first) when the client
    ends its sending or closes, when it has sent
    nothing for C{lingerTimeout} seconds, after C{lingerTime} seconds in all, or once
    C{lingerSize} bytes have been thrown away.

    Requests that arrive whole in one read take a faster way through the same steps
    (:mod:`sockjs_twisted._httpfast`).

    :cvar fastRequests: Set to C{False} (on the class or an instance) to parse every
        request with twisted.web alone.
    :ivar refused: Has a request on this connection been refused?
    """

    fastRequests = _httpfast.SUPPORTED

    MAX_LENGTH = 16 * 1024
    totalHeadersSize = 16 * 1024
    lingerTimeout = 2.0
    lingerTime = 10.0
    lingerSize = 16 * 1024 * 1024

    site: SockJSSite
    refused = False
    _lost = False
    _inHead = False
    _discarded = 0
    _lingerIdle: Optional[IDelayedCall] = None
    _lingerEnd: Optional[IDelayedCall] = None

    _idleCall: Optional[IDelayedCall] = None
    _idleDeadline: Optional[float] = None

    # idle timeout: twisted.web's TimeoutMixin cancels its timer when a request begins,
    # schedules a new one when it ends and reschedules it on every read.  Here one timer
    # stays scheduled; those changes only move the deadline it checks when it fires, and
    # it is scheduled again for what is left.  The connection times out at the same
    # instant.

    def setTimeout(self, period: Optional[float]) -> Optional[float]:
        previous: Optional[float] = self.timeOut
        self.timeOut = period  # type: ignore[assignment]  # twisted says int; floats work
        if period is None:
            if self.transport is None:
                # Another protocol (a websocket) has taken the connection over.
                self._cancelIdle()
            else:
                self._idleDeadline = None
            return previous
        self._idleDeadline = deadline = self.site.reactor.seconds() + period
        call = self._idleCall
        if call is None:
            self._idleCall = self.callLater(period, self._checkIdle)
        elif call.getTime() > deadline:
            call.reset(period)
        return previous

    def resetTimeout(self) -> None:
        if self._idleDeadline is not None:
            self._idleDeadline = self.site.reactor.seconds() + self.timeOut  # type: ignore[operator]

    def _checkIdle(self) -> None:
        self._idleCall = None
        deadline = self._idleDeadline
        if deadline is None:
            return
        self._idleCall = waitRest(self.site.reactor, deadline, self._checkIdle)
        if self._idleCall is not None:
            return
        self._idleDeadline = None
        self.timeoutConnection()

    def _cancelIdle(self) -> None:
        self._idleDeadline = None
        call = self._idleCall
        if call is not None:
            self._idleCall = None
            if call.active():
                call.cancel()

    # input

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            self._discard(len(data))
            return
        if not (self.fastRequests and _httpfast.receive(self, data)):
            super().dataReceived(data)
        # A request still incomplete at the end of the read that began it gets its
        # deadline now (the same instant on the reactor's clock): one that arrives whole,
        # the common case, never costs a timer.
        requests = self.requests
        if requests and not self.refused:
            request = requests[-1]
            if isinstance(request, _BoundedRequest) and request._awaitingDeadline:
                request._armDeadline()

    def lineReceived(self, line: bytes) -> None:
        if self.refused:
            return
        requestLine = not self._inHead
        if requestLine and line:
            self._inHead = True
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuseOversized(requestLine)
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        if not self.refused:
            self._refuseOversized(not self._inHead)
        self._discard(len(line))

    def allHeadersReceived(self) -> None:
        self._inHead = False
        if not self._refuseHost(self.requests[-1].requestHeaders.getRawHeaders(b"host")):
            super().allHeadersReceived()

    def _refuseHost(self, hosts: Optional[Sequence[bytes]]) -> bool:
        """
        Refuse the request if it has not exactly one C{Host} header (none is fine for
        HTTP/1.0).

        :param hosts: The request's C{Host} header values, C{None} if it has none.
        :return: Was it refused?
        """
        if hosts is None and self._version == b"HTTP/1.1":  # type: ignore[has-type]
            self.refuse(400, "Bad Request", "Host header required.")
            return True
        if hosts is not None and len(hosts) > 1:
            self.refuse(400, "Bad Request", "Duplicate Host header.")
            return True
        return False

    def rawDataReceived(self, data: bytes) -> None:
        if self.refused:
            self._discard(len(data))
            return
        super().rawDataReceived(data)
        if not self.refused and not self._handlingRequest:
            self._checkChunkSize()

    def _checkChunkSize(self) -> None:
        # twisted.web's chunked decoder waits for a chunk's bytes before it passes them
        # on: a chunk-size line announcing too much is refused as soon as it is read.
        decoder = self._transferDecoder
        if not isinstance(decoder, _ChunkedTransferDecoder) or decoder.state != "BODY":
            return
        request = self.requests[-1]
        received = request._bodyReceived if isinstance(request, _BoundedRequest) else 0
        if received + decoder.length > self.site.maxBodySize:
            self.refuse(413, "Payload Too Large", "Payload too large.")

    def _refuseOversized(self, requestLine: bool) -> None:
        if requestLine:
            self.refuse(414, "URI Too Long", "URI too long.")
        else:
            self.refuse(431, "Request Header Fields Too Large", "Request headers too large.")

    def _respondToBadRequestAndDisconnect(self) -> None:
        self.refuse(400, "Bad Request", "Bad request.")

    def _send100Continue(self) -> None:
        if not self.refused:
            super()._send100Continue()

    # refusing

    def refuse(self, code: int, phrase: str, body: str) -> None:
        """
        Answer C{code} with a one-line C{body}, write nothing more, and close with a
        lingering close.  Only the first refusal of a connection is written.
        """
        if self.refused:
            return
        self.refused = True
        self.site.observer.httpRefused(code)
        for request in self.requests:
            if isinstance(request, _BoundedRequest):
                request._cancelDeadline()
        self._discard(len(self.clearLineBuffer()))
        transport = self.transport
        if transport is None:
            # Another protocol (a websocket) has taken the connection over.
            return
        data = body.encode("ascii") + b"\n"
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (code, phrase.encode("ascii"), len(data), data)
        )
        self.setTimeout(None)
        # Keep reading whatever happens to writing: the channel no longer follows the
        # transport's flow control.
        self._networkProducer.unregisterProducer()
        self._networkProducer.resumeProducing()
        # From now on the client's end of sending does not drop the answer (see
        # readConnectionLost).
        alsoProvides(self, IHalfCloseableProtocol)
        # Half-close where the transport itself can (TCP): the client reads the answer
        # and then the end of it.  A wrapper (TLS) only looks as if it could.
        if getattr(type(transport), "loseWriteConnection", None) is not None:
            transport.loseWriteConnection()  # type: ignore[attr-defined]
        self._lingerIdle = self.callLater(self.lingerTimeout, self._endLinger)
        self._lingerEnd = self.callLater(self.lingerTime, self._endLinger)

    def readConnectionLost(self) -> None:
        """
        The client has sent all it will (C{IHalfCloseableProtocol}, which a refused
        channel provides): close once the answer is sent.  Without it Twisted closes at
        once, and an answer still in the transport's buffer is lost, as when a request
        over a limit arrives whole with the client's end of sending behind it.
        """
        self._endLinger()

    def writeConnectionLost(self) -> None:
        """
        The answer is sent and the write side shut down: read on until the lingering
        close ends.
        """

    def _discard(self, size: int) -> None:
        if not self.refused:
            return
        self._discarded += size
        if self._discarded > self.lingerSize:
            self._endLinger()
            return
        idle = self._lingerIdle
        if idle is not None and idle.active():
            idle.reset(self.lingerTimeout)

    def _cancelLinger(self) -> None:
        for call in (self._lingerIdle, self._lingerEnd):
            if call is not None and call.active():
                call.cancel()
        self._lingerIdle = self._lingerEnd = None

    def _endLinger(self) -> None:
        self._cancelLinger()
        transport = self.transport
        if self._lost or transport is None or transport.disconnecting:  # type: ignore[attr-defined]
            return
        transport.loseConnection()
        # Like twisted.web's timeout: a client that does not read our answer does not
        # keep the connection.  (A half-closed TCP connection is gone at once.)
        if not self._lost and self.abortTimeout is not None and self._abortingCall is None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def loseConnection(self) -> None:
        # Once refused, the lingering close decides when the connection ends.
        if not self.refused:
            super().loseConnection()

    def makeConnection(self, transport: ITransport) -> None:
        if self.site.writeThrough:  # see SockJSSite
            adopt(transport)
        super().makeConnection(transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self._cancelLinger()
        super().connectionLost(reason)
        self._cancelIdle()


class _BoundedRequest(Request):
    """
    A request that must arrive whole (headers and body) within the site's
    C{requestTimeout}, with a body no larger than the site's C{maxBodySize}; otherwise the
    client gets a one-line 408 or 413 and a lingering close.
    """

    site: SockJSSite

    _bodyReceived = 0
    _deadline: Optional[IDelayedCall] = None
    # Until the channel arms the deadline at the end of the read that began the request
    # (or the request is received whole, refused or lost first).
    _awaitingDeadline = True

    def _armDeadline(self) -> None:
        self._awaitingDeadline = False
        site = self._site()
        self._deadline = site.reactor.callLater(
            site.requestTimeout, self._refuse, 408, "Request Timeout", "Request too slow."
        )

    def _site(self) -> SockJSSite:
        site: SockJSSite = self.channel.site  # type: ignore[attr-defined]
        return site

    def _cancelDeadline(self) -> None:
        self._awaitingDeadline = False
        deadline = self._deadline
        if deadline is not None:
            self._deadline = None
            if deadline.active():
                deadline.cancel()

    def _refused(self) -> bool:
        return bool(getattr(self.channel, "refused", False))

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > self._site().maxBodySize:
            self._refuse(413, "Payload Too Large", "Payload too large.")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused():
            return
        self._bodyReceived += len(data)
        if self._bodyReceived > self._site().maxBodySize:
            self._refuse(413, "Payload Too Large", "Payload too large.")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._cancelDeadline()
        if self._refused():
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        self._cancelDeadline()
        super().connectionLost(reason)

    def _refuse(self, code: int, phrase: str, body: str) -> None:
        self._cancelDeadline()
        if self.startedWriting:
            return
        channel = self.channel
        if isinstance(channel, _SockJSChannel):
            channel.refuse(code, phrase, body)


class _LeanBoundedRequest(_BoundedRequest, LeanRequest):
    """
    A L{_BoundedRequest} with L{LeanRequest}'s response path: what L{SockJSSite} builds
    when the installed twisted.web supports it.
    """


class SockJSSite(Site):
    """
    A Site for SockJS.  No traceback pages; no access log (one line per poll would drown
    everything else: subclass and override C{log} to have one).  Requests are bounded:
    a body over C{max_body_size} gets 413, a request not received whole within
    C{request_timeout} seconds gets 408 (header and body trickling), and an idle
    connection is closed after C{idle_timeout} seconds.

    Writes go through (C{write_through}, on by default): on the plain TCP connections
    the site accepts, what one iteration of the reactor writes is sent at its end, one
    send per connection, and only what the kernel does not take waits in Twisted's
    buffer for the reactor (see L{sockjs_twisted._writethrough}).  Twisted's transport,
    left as it is, has the reactor watch the socket and sends on its next iteration, at
    the cost of two more system calls per answer.  TLS and other wrapped connections are
    not changed.

    :ivar maxBodySize: The C{max_body_size} given.
    :ivar requestTimeout: The C{request_timeout} given.
    :ivar writeThrough: The C{write_through} given.
    """

    displayTracebacks = False
    protocol = _SockJSChannel  # type: ignore[assignment]
    requestFactory: type[Request] = _LeanBoundedRequest if _LEAN_SUPPORTED else _BoundedRequest
    observer: NullObserver = NULL_OBSERVER

    def __init__(
        self,
        resource: Resource,
        reactor: Optional[IReactorTime] = None,
        *,
        max_body_size: int = 1024 * 1024,
        request_timeout: float = 30,
        idle_timeout: float = 60,
        write_through: bool = True,
    ) -> None:
        """
        :param resource: The root resource.
        :param reactor: The reactor; the global one by default.
        :param max_body_size: Largest request body accepted, in bytes.
        :param request_timeout: Seconds a client has to send a whole request.
        :param idle_timeout: Seconds an idle keep-alive connection is kept.
        :param write_through: Send at the end of the reactor's iteration on plain TCP
            connections (see above);
            C{False} leaves Twisted's transports as they are.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor  # type: ignore[assignment]
        super().__init__(
            resource, reactor=reactor, timeout=idle_timeout, parsePOSTFormSubmission=False
        )
        self.maxBodySize = max_body_size
        self.requestTimeout = request_timeout
        self.writeThrough = write_through

    def log(self, request: Any) -> None:
        pass


class _SiteOwnedResource(SockJSResource):
    """
    The endpoint of a L{SockJSFactory}: started when the site starts listening, not when
    the reactor runs.
    """

    _startsWithReactor = False


class SockJSFactory(SockJSSite):
    """
    Serve C{factory}'s protocols to SockJS clients: C{listenTCP(8081,
    SockJSFactory(MyFactory()))}.  The endpoint is served at the C{prefix} option (the
    root by default).

    The wrapped factory is started when this site starts listening (its first port), and
    its endpoint is stopped when the site stops listening (its last port) or, before
    that, when the reactor shuts down: every session is closed with C{1001 "Server
    shutting down"} and the wrapped factory is stopped (see L{SockJSResource}).

    :ivar sockjsResource: The L{SockJSResource} serving the endpoint (the site's
        C{resource} is the root of its tree, which is that same resource when there is
        no prefix).
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        reactor: Optional[IReactorTime] = None,
        *,
        request_timeout: float = 30,
        idle_timeout: float = 60,
        write_through: bool = True,
        **options: Any,
    ) -> None:
        """
        :param factory: An ordinary protocol factory; each SockJS session gets one of its
            protocols.
        :param reactor: The reactor; the global one by default.
        :param request_timeout: See L{SockJSSite}.
        :param idle_timeout: See L{SockJSSite}.
        :param write_through: See L{SockJSSite}.
        :param options: See L{SockJSOptions}; C{max_body_size} also bounds request bodies
            for the whole site.
        """
        self.sockjsResource: SockJSResource = _SiteOwnedResource(
            factory, reactor=reactor, **options
        )
        prefix = self.sockjsResource.options.prefix
        root: Resource
        if prefix:
            root = Resource()
            mount(root, prefix, self.sockjsResource)
        else:
            root = self.sockjsResource
        super().__init__(
            root,
            reactor=reactor,
            max_body_size=self.sockjsResource.options.max_body_size,
            request_timeout=request_timeout,
            idle_timeout=idle_timeout,
            write_through=write_through,
        )

    def startFactory(self) -> None:
        super().startFactory()
        self.sockjsResource.start()

    def stopFactory(self) -> None:
        self.sockjsResource.stop()
        super().stopFactory()
