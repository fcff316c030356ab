"""
Write-through for the plain TCP connections a :class:`~sockjs_twisted.SockJSSite`
accepts.

Twisted's TCP transport never sends in ``write()``: it appends to a buffer and asks the
reactor to watch the socket for writability (an ``epoll_ctl``); on the reactor's next
iteration ``doWrite`` sends, and the transport stops watching (another ``epoll_ctl``).
Each answer costs two extra system calls and a reactor dispatch, and waits for the
next iteration.  asyncio and Node.js send at once and buffer only what the kernel does
not take; so does :class:`_WriteThroughServer`:

- A write made while one of the site's connections is being read (``doRead``: an HTTP
  request, a websocket frame) is kept in Twisted's own buffer, and everything written
  to that connection during the read leaves in one ``send`` when the read is handled.
  So an HTTP response (headers, body and the last chunk are three writes in
  twisted.web) or the echo of a frame costs one system call, and a poll answered by an
  ``xhr_send`` on another connection too.
- Any other write (a timer, another site's read) is sent at once.
- In both cases, only what the kernel does not take (``EAGAIN``, a partial send) goes to
  Twisted's buffering, and any error is left for Twisted's ``doWrite`` to find, as it
  finds it today.  Nothing is sent directly unless Twisted's own buffer is empty and
  nothing else waits: connected, not closing (``loseConnection``,
  ``loseWriteConnection``, ``abortConnection``), no TLS (``startTLS``), no paused
  producer and no pull producer (which Twisted asks for more each time its buffer
  drains).  Otherwise the ordinary ``write`` runs.

The producer rule stays Twisted's: a streaming producer is paused when the bytes waiting
in the transport's buffer exceed ``bufferSize`` (bytes the kernel took no longer wait),
and resumed by Twisted's ``doWrite`` when they are sent.

Only connections whose transport is exactly :class:`twisted.internet.tcp.Server` are
switched (their class becomes a subclass of it, the same object stays): TLS, wrapped and
test transports keep theirs.  The websocket that takes a connection over after the
upgrade keeps the same transport object, so it writes through too.  If Twisted's
transport does not look as this module expects (another version's internals), nothing
is switched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from twisted.internet import tcp
from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import ITransport

__all__ = ["ReadBatch", "adopt", "supported"]

_Server = tcp.Server

# What the subclass reads or writes of Twisted's transport: class attributes (defaults)
# of tcp.Server and its bases, and instance attributes its __init__ sets.
_CLASS_ATTRIBUTES = (
    "dataBuffer",
    "offset",
    "connected",
    "disconnecting",
    "_writeDisconnecting",
    "_writeDisconnected",
    "_aborting",
    "TLS",
    "producer",
    "producerPaused",
    "streamingProducer",
    "doRead",
    "doWrite",
    "startWriting",
    "_maybePauseProducer",
)
_INSTANCE_ATTRIBUTES = ("socket", "_tempDataBuffer", "_tempDataLen")


def _looksAsExpected() -> bool:
    """
    Does Twisted's TCP server transport have the internals this module relies on?
    """
    if not all(hasattr(_Server, name) for name in _CLASS_ATTRIBUTES):
        return False
    # The buffering of FileDescriptor.write, which ours falls back to and must match.
    return (
        getattr(_Server, "_tlsClientDefault", None) is False
        and FileDescriptor.write.__code__.co_names.count("_tempDataBuffer") == 1
        and "_tempDataLen" in FileDescriptor.doWrite.__code__.co_names
    )


_SUPPORTED = _looksAsExpected()


def supported() -> bool:
    """
    Can connections be switched to write-through with the Twisted installed?
    """
    return _SUPPORTED


class ReadBatch:
    """
    The read being handled on one of a site's connections, and the connections written
    to during it, each flushed with one ``send`` when the read is handled.

    :ivar reading: Is one of the site's connections being read?
    :ivar pending: The connections written to during that read, in the order of their
        first write.
    """

    __slots__ = ("reading", "pending")

    def __init__(self) -> None:
        self.reading = False
        self.pending: list[_WriteThroughServer] = []


class _WriteThroughServer(_Server):
    """
    :class:`twisted.internet.tcp.Server` sending in ``write`` when nothing waits (see the
    module's docstring).  Made by :func:`adopt` only.

    :ivar _batch: The :class:`ReadBatch` of the site that accepted this connection.
    :ivar _deferred: Was this connection written to during the current read, its bytes
        waiting in Twisted's buffer for the end of the read?
    """

    _batch: ReadBatch
    _deferred = False

    def _canSend(self) -> bool:
        producer = self.producer
        return bool(
            self.connected
            and not self.disconnecting
            and not self._writeDisconnecting
            and not self._aborting
            and not self.TLS
            and not self.producerPaused
            and (producer is None or self.streamingProducer)
        )

    def write(self, data: bytes) -> None:
        if self._deferred:
            if type(data) is bytes and self.connected and not self.TLS:
                # FileDescriptor.write, but the end of the read sends it.
                if data and not self._writeDisconnected:
                    self._tempDataBuffer.append(data)
                    self._tempDataLen += len(data)
                    self._maybePauseProducer()
                return
        elif (
            type(data) is bytes
            and data
            and not self._tempDataBuffer
            and not self.dataBuffer
            and self._canSend()
        ):
            self._writeIdle(data)
            return
        _Server.write(self, data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        for chunk in iovec:
            if type(chunk) is not bytes:
                _Server.writeSequence(self, iovec)  # raises TypeError, as Twisted does
                return
        if self._deferred:
            if self.connected and not self.TLS:
                if not self._writeDisconnected:
                    self._tempDataBuffer.extend(iovec)
                    for chunk in iovec:
                        self._tempDataLen += len(chunk)
                    self._maybePauseProducer()
                return
        elif iovec and not self._tempDataBuffer and not self.dataBuffer and self._canSend():
            data = b"".join(iovec)
            if data:
                self._writeIdle(data)
            return
        _Server.writeSequence(self, iovec)

    def _writeIdle(self, data: bytes) -> None:
        """
        Write ``data`` to a connection with nothing waiting: at the end of the read
        being handled, or now.
        """
        batch = self._batch
        if batch.reading:
            self._deferred = True
            batch.pending.append(self)
            self._tempDataBuffer.append(data)
            self._tempDataLen += len(data)
            self._maybePauseProducer()
            return
        try:
            sent = self.socket.send(data)
        except OSError:
            # EAGAIN: the kernel's buffer is full.  Any other error: Twisted's doWrite
            # meets it again and reports the connection lost, as it does today.
            sent = 0
        if sent < len(data):
            _Server.write(self, data[sent:] if sent else data)

    def doRead(self) -> Any:
        batch = self._batch
        if batch.reading:  # pragma: no cover - the reactor does not nest reads
            return _Server.doRead(self)
        batch.reading = True
        try:
            return _Server.doRead(self)
        finally:
            batch.reading = False
            pending = batch.pending
            if pending:
                batch.pending = []
                for transport in pending:
                    transport._flushRead()

    def _flushRead(self) -> None:
        """
        The read is handled: send what was written to this connection during it, or
        hand it to the reactor as Twisted's ``write`` would have.
        """
        self._deferred = False
        buffered = self._tempDataBuffer
        if not buffered:
            return
        if self.dataBuffer or not self._canSend():
            if self.connected and not self._aborting:
                self.startWriting()
            return
        data = buffered[0] if len(buffered) == 1 else b"".join(buffered)
        try:
            sent = self.socket.send(data)
        except OSError:
            # Left where doWrite finds it (and its error, if it is one).
            self.startWriting()
            return
        self._tempDataBuffer = []
        self._tempDataLen = 0
        if sent < len(data):
            self.dataBuffer = data
            self.offset = sent
            self.startWriting()


def adopt(transport: ITransport, batch: Optional[ReadBatch]) -> bool:
    """
    Switch a connection a site accepted to write-through, if it is a plain TCP
    connection of the reactor (exactly :class:`twisted.internet.tcp.Server`), nothing
    has been written to it yet, and Twisted's internals are what this module expects.

    :param transport: The transport handed to the site's channel.
    :param batch: The site's :class:`ReadBatch`; ``None`` switches nothing.
    :return: Was it switched?
    """
    if batch is None or not _SUPPORTED or type(transport) is not _Server:
        return False
    server: Any = transport
    if not all(hasattr(server, name) for name in _INSTANCE_ATTRIBUTES):
        return False
    if server._tempDataBuffer or server.dataBuffer:
        return False
    server.__class__ = _WriteThroughServer
    server._batch = batch
    return True
