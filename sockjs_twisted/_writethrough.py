"""
Write-through for the plain TCP connections a :class:`~sockjs_twisted.SockJSSite`
accepts: what is written during one iteration of the reactor leaves, one ``send`` per
connection, at the end of that iteration, without the reactor watching the socket.

Twisted's TCP transport never sends in ``write()``: it appends to a buffer and asks the
reactor to watch the socket for writability (an ``epoll_ctl``); on the reactor's next
iteration ``doWrite`` sends, and the transport stops watching (another ``epoll_ctl``).
Each answer costs two extra system calls, a reactor dispatch, and a trip through the
poller.  :class:`_WriteThroughServer` keeps the writes in Twisted's own buffer and, once
per iteration of the reactor for all connections that were written to (one
``callLater(0)``), sends each connection's bytes in one ``send``; only what the kernel
does not take (``EAGAIN``, a partial send) is left for Twisted's ``doWrite``, and any
error too, for ``doWrite`` to find as it finds it today.

Why not send in ``write()`` itself, as asyncio and Node.js do: that was measured
(``bash bench/run``, CPython, xhr polling with 100 sessions), and sending at once did
fewer system calls per request but cost more CPU per request than Twisted's own
deferred writes (about 4,500 against 5,300 cycles per server-CPU second), while
sending at the end of the iteration did best (5,900 to 6,600): the sends of one
iteration go out together, after all the reads, and each connection's writes of the
iteration are joined in one ``send``.  A lone message (a websocket echo at a low rate) pays one
``callLater(0)`` instead of the two ``epoll_ctl`` and the extra ``epoll_wait``.

Nothing is sent directly unless nothing else waits: Twisted's buffer holds only what
this iteration wrote (the reactor is not watching the socket), connected, not closing
(``loseConnection``, ``loseWriteConnection``, ``abortConnection``), no TLS
(``startTLS``), no paused producer and no pull producer (which Twisted asks for more
each time its buffer drains).  Otherwise Twisted's own ``write`` runs, and the reactor
watches the socket at once; bytes of the turn that can no longer be sent directly at its
end are left to Twisted the same way.

``loseConnection`` is done at the end of the turn too: the turn's bytes are sent, the
socket is closed and ``connectionLost`` is called with ``ConnectionDone``, as Twisted's
``doWrite`` and reactor do once the buffer is empty, without the reactor watching the
socket first.  With a producer registered, or bytes the kernel does not take, the close
is left to Twisted.

The producer rule stays Twisted's: a streaming producer is paused when the bytes waiting
in the transport's buffer exceed ``bufferSize`` (checked on each write, as Twisted does;
bytes the kernel took no longer wait), and resumed by Twisted's ``doWrite`` when they
are sent.

The addresses of the connection are made once: ``getHost`` reads the socket once, not on
every request (twisted.web asks for it for each request, a ``getsockname`` each time),
and ``getPeer`` makes its address object once (twisted.web, Autobahn and the session
each ask for it); ``setTcpNoDelay`` calls ``setsockopt`` only to change the option
(twisted.web's channel turns it on, then the websocket asks for it again).

On PyPy, reads go into one buffer per reactor (of Twisted's ``bufferSize``, 64 KiB) and
only what was read is copied out.  PyPy's ``recv(n)`` makes an ``n``-byte string in its
young generation before it knows how much comes: each read of Twisted's cost 64 KiB of
it, a minor collection for every 18 websocket messages or so at 1000 messages per
second, one every 5 set-ups of a websocket session.  (On CPython ``recv`` is as cheap as
``recv_into`` and a copy, or cheaper, and stays.)

Only connections whose transport is exactly :class:`twisted.internet.tcp.Server` are
switched (their class becomes a subclass of it, the same object stays): TLS, wrapped and
test transports keep theirs.  The websocket that takes a connection over after the
upgrade keeps the same transport object, so it writes through too.  If Twisted's
transport does not look as this module expects (another version's internals), nothing
is switched.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterable
from typing import Any, Optional, Union

from twisted.internet import main, tcp
from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IReactorTime, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["adopt", "supported"]

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
    "_dataReceived",
    "bufferSize",
    "doWrite",
    "startWriting",
    "_maybePauseProducer",
)
_INSTANCE_ATTRIBUTES = ("socket", "_tempDataBuffer", "_tempDataLen", "reactor")

_log = Logger()

# One for every connection closed here, as Twisted's reactor has one for those it closes.
_CONNECTION_DONE = Failure(ConnectionDone())


def _looksAsExpected() -> bool:
    """
    Does Twisted's TCP server transport have the internals this module relies on?
    """
    if not all(hasattr(_Server, name) for name in _CLASS_ATTRIBUTES):
        return False
    # The buffering of FileDescriptor.write, which ours falls back to and must match.
    # (Nothing here may depend on TLS support: without pyOpenSSL, Twisted's transport has
    # no TLS mixin, and a class attribute TLS = False only.)
    return (
        FileDescriptor.write.__code__.co_names.count("_tempDataBuffer") == 1
        and "_tempDataLen" in FileDescriptor.doWrite.__code__.co_names
    )


_SUPPORTED = _looksAsExpected()

# The size of the buffer reads go into on PyPy: Twisted's bufferSize.
_READ_SIZE = 2**16


def supported() -> bool:
    """
    Can connections be switched to write-through with the Twisted installed?
    """
    return _SUPPORTED


class _Flusher:
    """
    The connections of one reactor written to during its current iteration, sent at its
    end by one C{callLater(0)}; and the buffer they read into on PyPy.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor
        self._pending: list[_WriteThroughServer] = []
        # What this reactor's connections read into, on PyPy (see the module's docstring).
        self.readBuffer = memoryview(bytearray(_READ_SIZE))

    def add(self, transport: _WriteThroughServer) -> None:
        if not self._pending:
            self._reactor.callLater(0, self.flush)
        self._pending.append(transport)

    def flush(self) -> None:
        pending = self._pending
        self._pending = []
        for transport in pending:
            try:
                transport._flush()
            except Exception:
                # Not expected (send errors are caught); the others are still sent,
                # and this one's bytes are left to Twisted's doWrite.
                _log.failure("Sending a connection's writes failed")
                transport._handOver()


_flushers: weakref.WeakKeyDictionary[Any, _Flusher] = weakref.WeakKeyDictionary()


def _flusherFor(reactor: IReactorTime) -> _Flusher:
    flusher = _flushers.get(reactor)
    if flusher is None:
        flusher = _flushers[reactor] = _Flusher(reactor)
    return flusher


class _WriteThroughServer(_Server):
    """
    :class:`twisted.internet.tcp.Server` sending at the end of the reactor's iteration
    what was written during it (see the module's docstring).  Made by :func:`adopt` only.

    :ivar _flusher: This reactor's :class:`_Flusher`.
    :ivar _queued: Is this connection with the flusher, for this iteration?
    :ivar _closeAtFlush: Was C{loseConnection} called in this iteration, to be done at
        its end (see L{_close})?
    """

    _flusher: _Flusher
    # Read into the reactor's buffer (PyPy; see the module's docstring).
    _sharedReads = sys.implementation.name == "pypy"
    _queued = False
    _closeAtFlush = False
    _hostAddress: Optional[IAddress] = None
    _peerAddress: Optional[IAddress] = None
    _noDelay: Optional[bool] = None

    def doRead(self) -> Optional[Union[ConnectionLost, ConnectionDone]]:
        if not self._sharedReads:
            return _Server.doRead(self)
        buffer = self._flusher.readBuffer
        if self.bufferSize > len(buffer):
            return _Server.doRead(self)
        # Twisted's tcp.Connection.doRead, reading into the reactor's buffer.
        try:
            size = self.socket.recv_into(buffer, self.bufferSize)
        except OSError as error:
            if error.args[0] == tcp.EWOULDBLOCK:
                return None
            return main.CONNECTION_LOST
        return self._dataReceived(buffer[:size].tobytes())

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

    def _mayQueue(self) -> bool:
        """
        May what is written now wait for the end of the turn: nothing waits in Twisted's
        buffer but this turn's writes, and nothing needs Twisted's own path?
        """
        return (
            not self.dataBuffer and (self._queued or not self._tempDataBuffer) and self._canSend()
        )

    def write(self, data: bytes) -> None:
        if type(data) is bytes and self._mayQueue():
            if data:
                self._tempDataBuffer.append(data)
                self._tempDataLen += len(data)
                self._queue()
            return
        _Server.write(self, data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        for chunk in iovec:
            if type(chunk) is not bytes:
                _Server.writeSequence(self, iovec)  # raises TypeError, as Twisted does
                return
        if self._mayQueue():
            size = 0
            for chunk in iovec:
                size += len(chunk)
            if size:
                self._tempDataBuffer.extend(iovec)
                self._tempDataLen += size
                self._queue()
            return
        _Server.writeSequence(self, iovec)

    def loseConnection(self) -> None:  # type: ignore[override]
        if self.producer is None and self._mayQueue():
            # Closed at the end of the iteration, after what it wrote: no watching
            # the socket for writability first (see _flush).
            self.stopReading()
            self.disconnecting = True
            self._closeAtFlush = True
            if not self._queued:
                self._queued = True
                self._flusher.add(self)
            return
        _Server.loseConnection(self)

    def _queue(self) -> None:
        self._maybePauseProducer()
        if not self._queued:
            self._queued = True
            self._flusher.add(self)

    def _flush(self) -> None:
        """
        The end of the iteration: send what it wrote, or leave it to Twisted.
        """
        self._queued = False
        if self._closeAtFlush:
            self._closeAtFlush = False
            self._close()
            return
        if not self._tempDataBuffer:
            return  # Twisted's doWrite sent it meanwhile
        if self.dataBuffer or not self._canSend():
            self._handOver()
            return
        chunks = self._tempDataBuffer
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._tempDataBuffer = []
        self._tempDataLen = 0
        self._sendNow(data)

    def _close(self) -> None:
        """
        The end of the iteration in which C{loseConnection} was called: send what waits
        and close, as Twisted's C{doWrite} and reactor do once the buffer is empty, or
        leave both to them if the kernel does not take it all (or a producer came).
        """
        if not self.connected or self._aborting:
            return
        if self.dataBuffer or self.producer is not None:
            self.startWriting()  # Twisted's doWrite is under way, or a producer came
            return
        chunks = self._tempDataBuffer
        if chunks:
            self._tempDataBuffer = []
            self._tempDataLen = 0
            self._sendNow(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if self._tempDataBuffer:
                return  # the kernel took part: Twisted's doWrite sends the rest, closes
        self.reactor.removeWriter(self)  # type: ignore[attr-defined]
        self.connectionLost(_CONNECTION_DONE)

    def _handOver(self) -> None:
        """
        Let Twisted's doWrite send what waits, as it would have from the first write.
        """
        if self.connected and not self._aborting and (self._tempDataBuffer or self.dataBuffer):
            self.startWriting()

    def _sendNow(self, data: bytes) -> None:
        try:
            sent = self.socket.send(data)
        except OSError:
            # EAGAIN: the kernel's buffer is full.  Any other error: Twisted's doWrite
            # meets it again and reports the connection lost, as it does today.
            sent = 0
        if sent < len(data):
            _Server.write(self, data[sent:] if sent else data)

    def getHost(self) -> IAddress:
        host = self._hostAddress
        if host is None:
            host = self._hostAddress = _Server.getHost(self)
        return host

    def setTcpNoDelay(self, enabled: bool) -> None:
        # twisted.web's channel turns it on for every connection, then the websocket
        # that takes the connection over asks again: one setsockopt is enough.
        enabled = bool(enabled)
        if enabled is not self._noDelay:
            _Server.setTcpNoDelay(self, enabled)
            self._noDelay = enabled

    def getPeer(self) -> IAddress:
        peer = self._peerAddress
        if peer is None:
            peer = self._peerAddress = _Server.getPeer(self)
        return peer


def adopt(transport: ITransport) -> bool:
    """
    Switch a connection to write-through, if it is a plain TCP connection of the
    reactor (exactly :class:`twisted.internet.tcp.Server`), nothing has been written to
    it yet, and Twisted's internals are what this module expects.

    :param transport: The transport handed to a site's channel.
    :return: Was it switched?
    """
    if not _SUPPORTED or type(transport) is not _Server:
        return False
    server: Any = transport
    if not all(hasattr(server, name) for name in _INSTANCE_ATTRIBUTES):
        return False
    if server._tempDataBuffer or server.dataBuffer:
        return False
    server.__class__ = _WriteThroughServer
    server._flusher = _flusherFor(server.reactor)
    return True
