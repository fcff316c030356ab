"""
Write-through for the plain TCP connections a :class:`~sockjs_twisted.SockJSSite`
accepts.

Twisted's TCP transport never sends in ``write()``: it appends to a buffer and asks the
reactor to watch the socket for writability (an ``epoll_ctl``); on the reactor's next
iteration ``doWrite`` sends, and the transport stops watching (another ``epoll_ctl``).
Each answer costs two extra system calls and a reactor dispatch, and waits for the
next iteration.  asyncio and Node.js send at once and buffer only what the kernel does
not take; so does :class:`_WriteThroughServer`.

Every write with nothing waiting in Twisted's buffer is sent in ``write``; only what the
kernel does not take (``EAGAIN``, a partial send) goes to Twisted's buffering, and any
error is left for Twisted's ``doWrite`` to find, as it finds it today.  Nothing is sent
directly unless Twisted's own buffer is empty and nothing else waits: connected, not
closing (``loseConnection``, ``loseWriteConnection``, ``abortConnection``), no TLS
(``startTLS``), no paused producer and no pull producer (which Twisted asks for more
each time its buffer drains).  Otherwise the ordinary ``write`` runs.

Writes made during one read are not held back to leave in one ``send`` at its end: the
HTTP responses are one write each already, and a websocket writes one frame per session
and read (the session batches), so holding them saved no system call and cost some 2,000
to 10,000 instructions per read on CPython (measured with callgrind).

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
from typing import Any

from twisted.internet import tcp
from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import ITransport

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
    # (Nothing here may depend on TLS support: without pyOpenSSL, Twisted's transport has
    # no TLS mixin, and a class attribute TLS = False only.)
    return (
        FileDescriptor.write.__code__.co_names.count("_tempDataBuffer") == 1
        and "_tempDataLen" in FileDescriptor.doWrite.__code__.co_names
    )


_SUPPORTED = _looksAsExpected()


def supported() -> bool:
    """
    Can connections be switched to write-through with the Twisted installed?
    """
    return _SUPPORTED


class _WriteThroughServer(_Server):
    """
    :class:`twisted.internet.tcp.Server` sending in ``write`` when nothing waits (see the
    module's docstring).  Made by :func:`adopt` only.

    """

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
        if (
            type(data) is bytes
            and data
            and not self._tempDataBuffer
            and not self.dataBuffer
            and self._canSend()
        ):
            self._sendNow(data)
            return
        _Server.write(self, data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        for chunk in iovec:
            if type(chunk) is not bytes:
                _Server.writeSequence(self, iovec)  # raises TypeError, as Twisted does
                return
        if iovec and not self._tempDataBuffer and not self.dataBuffer and self._canSend():
            data = b"".join(iovec)
            if data:
                self._sendNow(data)
            return
        _Server.writeSequence(self, iovec)

    def _sendNow(self, data: bytes) -> None:
        try:
            sent = self.socket.send(data)
        except OSError:
            # EAGAIN: the kernel's buffer is full.  Any other error: Twisted's doWrite
            # meets it again and reports the connection lost, as it does today.
            sent = 0
        if sent < len(data):
            _Server.write(self, data[sent:] if sent else data)


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
    return True
