"""
A session carried by HTTP requests made through a L{twisted.web.client.Agent}: a
receiving request (xhr-streaming or xhr-polling), renewed while the session lasts, and
C{xhr_send} requests, one at a time, each carrying every message written while the one
before was under way.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.task import Cooperator
from twisted.python.failure import Failure
from twisted.web.client import FileBodyProducer, HTTPConnectionPool, ResponseDone, readBody
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer

from ._frames import encodeMessages
from ._transport import ILink, SockJSClientTransport

__all__ = ["HTTPLink", "HTTPStatusError", "RECEIVERS"]

#: The URL suffix of each HTTP transport's receiving request.
RECEIVERS = {"xhr-streaming": "xhr_streaming", "xhr-polling": "xhr"}

_PRELUDE = b"h" * 2048
_SEND_HEADERS = {b"Content-Type": [b"text/plain;charset=UTF-8"]}


class HTTPStatusError(Exception):
    """
    A SockJS URL answered with an unexpected status.
    """


def statusError(method: str, url: bytes, code: int, body: bytes) -> HTTPStatusError:
    """
    The error for an unexpected answer, with the start of its body.
    """
    text = body.decode("utf-8", "replace").strip()
    if len(text) > 80:
        text = text[:80] + "..."
    return HTTPStatusError(f"{method} {url.decode('ascii')} answered {code}: {text!r}")


class _FrameReader(Protocol):
    """
    Reads the frames of an C{xhr} or C{xhr_streaming} response, one a line, as they
    arrive.  C{done} fires once the response ended, or fails once L{stop} closed its
    connection.
    """

    def __init__(self, session: SockJSClientTransport, skipPrelude: bool) -> None:
        self.done: Deferred[None] = Deferred()
        self._session = session
        self._skipPrelude = skipPrelude
        self._buffer = b""
        self.stopped = False

    def dataReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if self.stopped:
                return
            if self._skipPrelude:
                self._skipPrelude = False
                if line == _PRELUDE:
                    continue
            try:
                frame = line.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                self._session._protocolError("a frame is not UTF-8")
                return
            self._session._frameReceived(frame)

    def stop(self) -> None:
        """
        Stop reading: close the connection.
        """
        self.stopped = True
        transport: Any = self.transport
        if transport is not None:
            transport.stopProducing()

    def pause(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.pauseProducing()

    def resume(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.resumeProducing()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.stopped or not reason.check(ResponseDone, PotentialDataLoss):
            self.done.errback(reason)
        elif self._buffer:
            self.done.errback(Failure(ConnectionLost("the response ended inside a frame")))
        else:
            self.done.callback(None)


_RUNNING, _CLIENT_CLOSE, _SERVER_CLOSE, _ABORT = range(4)


@implementer(ILink)
class HTTPLink:
    """
    A session carried by HTTP requests.
    """

    def __init__(
        self,
        transport: SockJSClientTransport,
        reactor: Any,
        agent: IAgent,
        url: str,
        transportName: str,
        pool: Optional[HTTPConnectionPool] = None,
    ) -> None:
        """
        :param transport: The session.
        :param reactor: The reactor that schedules the request bodies' writes.
        :param agent: Makes the requests.
        :param pool: The pool of C{agent}'s connections, if they are the session's own:
            they are all closed before the session ends.
        :param url: The session's URL.
        :param transportName: C{"xhr-streaming"} or C{"xhr-polling"}.
        """
        self._transport = transport
        self._agent = agent
        self._pool = pool
        self._cooperator = Cooperator(scheduler=lambda work: reactor.callLater(0, work))
        receiver = RECEIVERS[transportName]
        self._receiveURL = f"{url}/{receiver}".encode("ascii")
        self._sendURL = f"{url}/xhr_send".encode("ascii")
        self._streaming = receiver == "xhr_streaming"
        self._receiving: Optional[Deferred[Any]] = None
        self._reader: Optional[_FrameReader] = None
        self._receiveStopped = False
        self._readPaused = False
        self._sending: Optional[Deferred[Any]] = None
        self._queue: list[str] = []
        self._mode = _RUNNING
        self._failure: Optional[Failure] = None
        self._reported = False

    def start(self) -> None:
        self._receive()

    # -- receiving ---------------------------------------------------------------------

    def _receive(self) -> None:
        d = self._agent.request(b"POST", self._receiveURL)
        self._receiving = d
        d.addCallback(self._gotReceiveResponse)
        d.addBoth(self._received)

    def _gotReceiveResponse(self, response: IResponse) -> Deferred[Any]:
        if response.code != 200:
            d = readBody(response)
            d.addCallback(
                lambda body: Failure(statusError("POST", self._receiveURL, response.code, body))
            )
            return d
        reader = _FrameReader(self._transport, self._streaming)
        self._reader = reader
        if self._readPaused:
            reader.pause()
        response.deliverBody(reader)
        if self._readPaused:
            reader.pause()
        return reader.done

    def _received(self, result: object) -> None:
        self._receiving = None
        self._reader = None
        running = self._mode == _RUNNING or (
            self._mode == _CLIENT_CLOSE and not self._receiveStopped
        )
        if isinstance(result, Failure):
            if running:
                self._fail(result)
        elif running and not self._readPaused:
            self._receive()
        self._maybeDone()

    def _stopReceiving(self) -> None:
        self._receiveStopped = True
        if self._reader is not None:
            # Wait for the connection to close: done fails then.
            self._reader.stop()
        elif self._receiving is not None:
            self._receiving.cancel()

    def pauseReading(self) -> None:
        self._readPaused = True
        if self._reader is not None:
            self._reader.pause()

    def resumeReading(self) -> None:
        if not self._readPaused:
            return
        self._readPaused = False
        if self._reader is not None:
            self._reader.resume()
        elif self._receiving is None and self._mode == _RUNNING:
            self._receive()

    # -- sending -----------------------------------------------------------------------

    def sendMessages(self, messages: list[str]) -> None:
        if self._mode not in (_RUNNING, _CLIENT_CLOSE):
            return
        self._queue.extend(messages)
        self._sendNext()

    def _sendNext(self) -> None:
        if self._sending is None and self._queue:
            body = encodeMessages(self._queue)
            self._queue = []
            producer = FileBodyProducer(BytesIO(body), self._cooperator, readSize=len(body))
            d = self._agent.request(b"POST", self._sendURL, Headers(_SEND_HEADERS), producer)
            self._sending = d
            d.addCallback(self._gotSendResponse)
            d.addBoth(self._sent)
        self._transport._sendBlockedChanged(bool(self._sending is not None and self._queue))

    def _gotSendResponse(self, response: IResponse) -> Deferred[Any]:
        d = readBody(response)
        if not 200 <= response.code < 300:
            d.addCallback(
                lambda body: Failure(statusError("POST", self._sendURL, response.code, body))
            )
        return d

    def _sent(self, result: object) -> None:
        self._sending = None
        if self._mode in (_RUNNING, _CLIENT_CLOSE):
            if isinstance(result, Failure):
                self._fail(result)
            else:
                self._sendNext()
                if self._mode == _CLIENT_CLOSE and self._sending is None:
                    self._stopReceiving()
        self._maybeDone()

    # -- closing -----------------------------------------------------------------------

    def loseConnection(self) -> None:
        """
        The client closes: send what is written, then stop receiving.
        """
        if self._mode != _RUNNING:
            return
        self._mode = _CLIENT_CLOSE
        if self._sending is None:
            self._stopReceiving()
        self._maybeDone()

    def serverClosed(self) -> None:
        """
        The server closed the session: its receiving response ends by itself.
        """
        if self._mode in (_RUNNING, _CLIENT_CLOSE):
            self._mode = _SERVER_CLOSE
            self._queue = []
        self._maybeDone()

    def abortConnection(self) -> None:
        """
        Stop now.  A send under way is let finish: the server answers it at once.
        """
        if self._mode != _ABORT:
            self._mode = _ABORT
            self._queue = []
            self._stopReceiving()
        self._maybeDone()

    def _fail(self, reason: Failure) -> None:
        if self._failure is None:
            self._failure = reason
        self.abortConnection()

    def _maybeDone(self) -> None:
        if self._mode == _RUNNING or self._reported:
            return
        if self._receiving is not None or self._sending is not None:
            return
        self._reported = True
        reason = self._failure or Failure(ConnectionDone())
        if self._pool is None:
            self._transport._linkLost(reason)
        else:
            closing = self._pool.closeCachedConnections()
            closing.addBoth(lambda _: self._transport._linkLost(reason))
