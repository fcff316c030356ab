"""
Tests for :mod:`sockjs_twisted._writethrough`: on real loopback sockets, a write-through
connection keeps every promise of Twisted's TCP transport (every byte in order to a slow
reader, the producer paused by the same rule, ``loseConnection`` and
``loseWriteConnection`` after what is buffered, ``abortConnection``, one
``connectionLost``), and the same generated write programs give the same result with it
and with Twisted's transport left alone.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
from typing import Any, Callable, Optional

from twisted.internet import reactor as globalReactor
from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from sockjs_twisted import SockJSFactory, _writethrough
from sockjs_twisted._writethrough import adopt
from sockjs_twisted.testing import SockJSClient

from ._fakes import RecordingProducer

reactor: Any = globalReactor

# Run in a fresh interpreter where importing Twisted's TLS support fails, as it does when
# pyOpenSSL is not installed.
_WITHOUT_TLS = """
import socket, sys
sys.modules["twisted.internet._newtls"] = None
from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol
from sockjs_twisted import _writethrough
ours, theirs = socket.socketpair()
server = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), None, 1, reactor)
adopted = _writethrough.adopt(server)
server.write(b"hello")
reactor.iterate()  # sent at the end of the reactor's iteration
theirs.settimeout(5)
print(f"TLS={server.TLS} supported={_writethrough.supported()} adopted={adopted}"
      f" sent={theirs.recv(100)!r}")
"""

# Small kernel buffers on both ends: a write of a few hundred KiB is sent in part (smaller
# ones make loopback TCP crawl).
SMALL_BUFFER = 65536


def pattern(start: int, size: int) -> bytes:
    """
    ``size`` bytes of a stream whose every position is distinct modulo 251: a byte
    lost, repeated or reordered shows.
    """
    return bytes((start + i) % 251 for i in range(size))


def tick(seconds: float = 0.0) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def until(condition: Callable[[], bool], step: float = 0.005) -> None:
    """
    Let the reactor run until ``condition()`` holds (the test's timeout bounds it).
    """
    while not condition():
        await tick(step)


class Peer(Protocol):
    """
    One end of a test connection: records what it reads, how its connection ended,
    and how often; small kernel buffers.

    :ivar onData: Called with each read's bytes, in the read.
    """

    onData: Optional[Callable[[bytes], None]] = None

    def __init__(self) -> None:
        self.received = bytearray()
        self.reasons: list[Failure] = []
        self.readEnded = False
        self.writeEnded = False
        self.lost: Deferred[None] = Deferred()
        self.connected_: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        sock = self.transport.getHandle()  # type: ignore[union-attr]
        if isinstance(sock, socket.socket):  # not TLS
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        self.connected_.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.onData is not None:
            self.onData(data)

    def readConnectionLost(self) -> None:
        self.readEnded = True

    def writeConnectionLost(self) -> None:
        self.writeEnded = True

    def connectionLost(self, reason: Optional[Failure] = None) -> None:
        assert reason is not None
        self.reasons.append(reason)
        if len(self.reasons) == 1:
            self.lost.callback(None)


@implementer(IHalfCloseableProtocol)
class HalfClosingPeer(Peer):
    """
    A :class:`Peer` told when its connection's read or write side ends.
    """


class PeerFactory(Factory):
    """
    Serves :class:`Peer` s; if ``writeThrough``, their transports write through, as a
    :class:`~sockjs_twisted.SockJSSite` makes them.
    """

    def __init__(self, writeThrough: bool) -> None:
        self.writeThrough = writeThrough
        self.peers: list[Peer] = []
        self.built: Deferred[Peer] = Deferred()

    def buildProtocol(self, addr: Any) -> Peer:
        peer = Peer()
        peer.factory = self
        real = peer.makeConnection

        def makeConnection(transport: Any) -> None:
            if self.writeThrough:
                adopt(transport)
            real(transport)

        peer.makeConnection = makeConnection  # type: ignore[method-assign]
        self.peers.append(peer)
        if len(self.peers) == 1:
            self.built.callback(peer)
        return peer


class ClientPeerFactory(ClientFactory):
    def __init__(self, halfClose: bool) -> None:
        self.peer = HalfClosingPeer() if halfClose else Peer()

    def buildProtocol(self, addr: Any) -> Peer:
        return self.peer


class Connected:
    """
    A server :class:`Peer` and a client :class:`Peer` connected on loopback.
    """

    server: Peer
    client: Peer
    factory: PeerFactory

    @property
    def transport(self) -> Any:
        return self.server.transport

    def askInRead(self, answer: Callable[[bytes], None]) -> None:
        """Have the client send C{?}: the server runs C{answer} in the read of it."""
        self.server.onData = answer
        self.client.transport.write(b"?")  # type: ignore[union-attr]

    async def ended(self, test: TestCase) -> Failure:
        """
        Wait for both ends to lose the connection; the server's end must lose it once.

        :return: Why the server's end lost it.
        """
        await self.client.lost
        await until(lambda: bool(self.server.reasons))
        await tick(0.01)
        test.assertEqual(len(self.server.reasons), 1)
        return self.server.reasons[0]


async def connect(
    test: TestCase, writeThrough: bool = True, clients: int = 1, halfClose: bool = False
) -> list[Connected]:
    """
    Listen with a :class:`PeerFactory` and connect ``clients`` clients; cleaned up by
    the test.
    """
    factory = PeerFactory(writeThrough)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    test.addCleanup(port.stopListening)
    pairs = []
    for _ in range(clients):
        clientFactory = ClientPeerFactory(halfClose)
        connector = reactor.connectTCP("127.0.0.1", port.getHost().port, clientFactory)
        test.addCleanup(connector.disconnect)
        await clientFactory.peer.connected_
        await until(lambda: len(factory.peers) > len(pairs))
        pair = Connected()
        pair.factory = factory
        pair.server = factory.peers[len(pairs)]
        pair.client = clientFactory.peer
        expected = _writethrough._WriteThroughServer if writeThrough else tcp.Server
        test.assertIs(type(pair.transport), expected)
        pairs.append(pair)
    return pairs


def buffered(transport: Any) -> int:
    """
    The bytes waiting in a TCP transport's own buffer.
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class CountingSocket:
    """
    A socket whose ``send`` calls are recorded (test double: everything else is the
    real socket's).
    """

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.sent: list[bytes] = []
        self.names = 0
        self.options = 0

    def send(self, data: Any) -> int:
        self.sent.append(bytes(data))
        return self.real.send(data)

    def setsockopt(self, *args: Any) -> Any:
        self.options += 1
        return self.real.setsockopt(*args)

    def getsockname(self) -> Any:
        self.names += 1
        return self.real.getsockname()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class AdoptTests(SynchronousTestCase):
    """
    Which transports are switched.
    """

    def unconnected(self, cls: type[tcp.Server] = tcp.Server) -> Any:
        """A server transport of class C{cls} on a socket that is not connected."""
        sock = socket.socket()
        self.addCleanup(sock.close)
        server = cls(sock, Protocol(), ("127.0.0.1", 1), None, 1, reactor)  # type: ignore[arg-type]
        self.addCleanup(server.stopReading)
        return server

    def channelOn(self, site: SockJSFactory, transport: Any) -> None:
        """Connect a channel of C{site} to C{transport}, lost at cleanup."""
        channel = site.buildProtocol(None)
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))

    def test_siteSwitchesPlainTCP(self) -> None:
        """A SockJSSite switches an exact tcp.Server to write-through, and nothing else."""
        site = SockJSFactory(Factory.forProtocol(Protocol), reactor=reactor)
        self.assertTrue(site.writeThrough)
        server = self.unconnected()
        self.channelOn(site, server)
        self.assertIs(type(server), _writethrough._WriteThroughServer)

    def test_stringTransportUntouched(self) -> None:
        """A test transport (or any other transport) keeps its class."""
        site = SockJSFactory(Factory.forProtocol(Protocol), reactor=reactor)
        transport = StringTransport()
        self.channelOn(site, transport)
        self.assertIs(type(transport), StringTransport)

    def test_subclassUntouched(self) -> None:
        """A subclass of tcp.Server (someone else's transport) is not switched."""

        class Other(tcp.Server):
            pass

        server = self.unconnected(Other)
        self.assertFalse(adopt(server))
        self.assertIs(type(server), Other)

    def test_offSwitchesNothing(self) -> None:
        """write_through=False leaves Twisted's transport as it is."""
        site = SockJSFactory(Factory.forProtocol(Protocol), reactor=reactor, write_through=False)
        self.assertFalse(site.writeThrough)
        server = self.unconnected()
        self.channelOn(site, server)
        self.assertIs(type(server), tcp.Server)

    def test_alreadyWrittenUntouched(self) -> None:
        """A transport with bytes already in Twisted's buffer is not switched."""
        server = self.unconnected()
        server.write(b"x")
        self.addCleanup(server.stopWriting)
        self.assertFalse(adopt(server))
        self.assertIs(type(server), tcp.Server)

    def test_unexpectedTwistedUntouched(self) -> None:
        """If Twisted's internals are not what the module expects, nothing is switched."""
        self.patch(_writethrough, "_SUPPORTED", False)
        self.assertFalse(_writethrough.supported())
        server = self.unconnected()
        self.assertFalse(adopt(server))
        self.assertIs(type(server), tcp.Server)

    def test_installedTwistedSupported(self) -> None:
        """The Twisted these tests run on is one the module supports."""
        self.assertTrue(_writethrough.supported())
        self.assertTrue(_writethrough._looksAsExpected())

    def test_supportedWithoutTLS(self) -> None:
        """
        Without pyOpenSSL, Twisted's TCP transport has no TLS mixin; write-through is
        still supported there, and a connection is switched and sends in C{write}.
        """
        result = subprocess.run(
            [sys.executable, "-c", _WITHOUT_TLS],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertEqual(
            result.stdout.decode("utf-8", "replace").splitlines()[-1:],
            ["TLS=False supported=True adopted=True sent=b'hello'"],
        )


class WriteThroughTests(TestCase):
    """
    A write-through connection on real loopback sockets.
    """

    timeout = 30

    async def test_sentAtEndOfIteration(self) -> None:
        """A write with nothing waiting stays in the buffer until the end of the reactor's iteration, then is sent, without the reactor ever watching the socket."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        pair.transport.write(b"hello")
        self.assertEqual(buffered(pair.transport), 5)
        self.assertEqual(counting.sent, [])
        self.assertNotIn(pair.transport, reactor.getWriters())
        await tick()
        self.assertEqual(counting.sent, [b"hello"])
        self.assertEqual(buffered(pair.transport), 0)
        self.assertNotIn(pair.transport, reactor.getWriters())
        await until(lambda: bytes(pair.client.received) == b"hello")

    async def test_ordinaryBuffers(self) -> None:
        """Twisted's transport left alone buffers the same write for the reactor (the test above can fail)."""
        (pair,) = await connect(self, writeThrough=False)
        pair.transport.write(b"hello")
        self.assertEqual(buffered(pair.transport), 5)
        self.assertIn(pair.transport, reactor.getWriters())
        await until(lambda: bytes(pair.client.received) == b"hello")

    async def test_oneSendPerIteration(self) -> None:
        """What one iteration writes (writes and writeSequences, in a read or not) leaves in one send, in order."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting

        def answer(data: bytes) -> None:
            pair.transport.write(b"a")
            pair.transport.writeSequence([b"b", b"", b"c"])

        pair.askInRead(answer)
        await until(lambda: len(pair.client.received) == 3)
        pair.transport.write(b"d")
        pair.transport.writeSequence([])
        pair.transport.write(b"")
        pair.transport.write(b"e")
        await until(lambda: len(pair.client.received) == 5)
        self.assertEqual(counting.sent, [b"abc", b"de"])
        self.assertEqual(bytes(pair.client.received), b"abcde")
        self.assertNotIn(pair.transport, reactor.getWriters())

    async def test_connectionsOfOneIteration(self) -> None:
        """Several connections written to in one iteration each get their own one send at its end."""
        pairs = await connect(self, clients=3)
        sockets = []
        for pair in pairs:
            sockets.append(CountingSocket(pair.transport.socket))
            pair.transport.socket = sockets[-1]
        for round_ in range(2):
            for i, pair in enumerate(pairs):
                pair.transport.write(b"%d" % i)
                pair.transport.write(b"%d" % round_)
        self.assertEqual([s.sent for s in sockets], [[], [], []])
        await tick()
        self.assertEqual([s.sent for s in sockets], [[b"0001"], [b"1011"], [b"2021"]])
        for i, pair in enumerate(pairs):
            await until(lambda pair=pair: len(pair.client.received) == 4)  # type: ignore[misc]
            self.assertEqual(bytes(pair.client.received), b"%d0%d1" % (i, i))

    async def test_abortWithQueuedWrites(self) -> None:
        """abortConnection after writes of the same iteration: nothing is sent, connectionLost comes once, with ConnectionAborted."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        pair.transport.write(b"queued")
        pair.transport.abortConnection()
        (await pair.ended(self)).trap(ConnectionAborted)
        self.assertEqual(counting.sent, [])
        self.assertEqual(bytes(pair.client.received), b"")

    async def test_closedAtEndOfIteration(self) -> None:
        """loseConnection after writes: at the end of the iteration the writes leave in one send and the connection closes, without the reactor ever watching the socket; connectionLost comes once, with ConnectionDone."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        pair.transport.write(b"last")
        pair.transport.writeSequence([b" ", b"words"])
        pair.transport.loseConnection()
        pair.transport.loseConnection()  # a no-op, as with Twisted's transport
        self.assertEqual(counting.sent, [])
        self.assertEqual(pair.server.reasons, [])
        self.assertNotIn(pair.transport, reactor.getReaders())
        self.assertNotIn(pair.transport, reactor.getWriters())
        await tick()
        self.assertEqual(counting.sent, [b"last words"])
        self.assertEqual(len(pair.server.reasons), 1)
        pair.server.reasons[0].trap(ConnectionDone)
        self.assertNotIn(pair.transport, reactor.getWriters())
        await pair.client.lost
        pair.client.reasons[0].trap(ConnectionDone)
        self.assertEqual(bytes(pair.client.received), b"last words")
        pair.transport.write(b"after")  # a no-op now
        await tick(0.01)
        self.assertEqual(counting.sent, [b"last words"])

    async def test_closedAtEndOfIterationWithNothingWritten(self) -> None:
        """loseConnection with nothing written closes at the end of the iteration, with no send."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        pair.transport.loseConnection()
        await pair.client.lost
        pair.client.reasons[0].trap(ConnectionDone)
        await until(lambda: bool(pair.server.reasons))
        pair.server.reasons[0].trap(ConnectionDone)
        self.assertEqual(counting.sent, [])

    async def test_abortAfterLoseConnection(self) -> None:
        """abortConnection after loseConnection in the same iteration: nothing is sent and connectionLost comes once, with ConnectionAborted, as with Twisted's transport."""
        for writeThrough in (False, True):
            (pair,) = await connect(self, writeThrough=writeThrough)
            pair.transport.write(b"dropped")
            pair.transport.loseConnection()
            pair.transport.abortConnection()
            (await pair.ended(self)).trap(ConnectionAborted)
            self.assertEqual(bytes(pair.client.received), b"", writeThrough)

    async def test_hostReadOnce(self) -> None:
        """getHost answers what Twisted's transport answers, reading the socket's address once."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        first = pair.transport.getHost()
        second = pair.transport.getHost()
        self.assertEqual(counting.names, 1)
        self.assertIs(first, second)
        self.assertEqual(first, tcp.Server.getHost(pair.transport))
        self.assertEqual(first, pair.client.transport.getPeer())  # type: ignore[union-attr]

    async def test_noDelaySetOnce(self) -> None:
        """setTcpNoDelay calls setsockopt only to change the option, and the option is what was asked last."""
        (pair,) = await connect(self)
        counting = CountingSocket(pair.transport.socket)
        pair.transport.socket = counting
        for enabled, calls in [(True, 1), (True, 1), (1, 1), (False, 2), (False, 2), (True, 3)]:
            pair.transport.setTcpNoDelay(enabled)  # type: ignore[arg-type]
            self.assertEqual(counting.options, calls)
            self.assertEqual(bool(pair.transport.getTcpNoDelay()), bool(enabled))

    async def test_peerMadeOnce(self) -> None:
        """getPeer answers what Twisted's transport answers, the same object each time."""
        (pair,) = await connect(self)
        first = pair.transport.getPeer()
        self.assertIs(pair.transport.getPeer(), first)
        self.assertEqual(first, tcp.Server.getPeer(pair.transport))
        self.assertEqual(first, pair.client.transport.getHost())  # type: ignore[union-attr]

    async def test_slowReader(self) -> None:
        """A reader with small buffers that keeps pausing gets every byte, in order, whatever mix of immediate and in-read writes made them."""
        (pair,) = await connect(self)
        expected = bytearray()
        client = pair.client

        def slow(data: bytes) -> None:
            client.transport.pauseProducing()  # type: ignore[union-attr]
            reactor.callLater(0.002, client.transport.resumeProducing)  # type: ignore[union-attr]

        client.onData = slow

        def writeSome(size: int) -> None:
            data = pattern(len(expected), size)
            expected.extend(data)
            pair.transport.write(data)

        for size in (10, 70_000, 3, 200_000, 1):
            writeSome(size)
        pair.server.onData = lambda data: [writeSome(n) for n in (5, 100_000, 7)]  # in a read
        client.transport.write(b"?")  # type: ignore[union-attr]
        await until(lambda: len(expected) >= 370_026)
        for size in (1, 50_000):
            writeSome(size)
        await until(lambda: len(client.received) >= len(expected))
        self.assertEqual(bytes(client.received), bytes(expected))

    async def test_pauseRule(self) -> None:
        """The producer is paused by Twisted's rule: on the first write after which the bytes waiting in the transport exceed bufferSize; resumed when they are sent; every byte arrives."""
        (pair,) = await connect(self)
        transport = pair.transport
        pair.client.transport.pauseProducing()  # type: ignore[union-attr]
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        total = 0
        while not producer.events:
            self.assertFalse(transport._isSendBufferFull())
            transport.write(pattern(total, 8192))
            total += 8192
        self.assertEqual(producer.events, ["pause"])
        self.assertTrue(transport._isSendBufferFull())
        self.assertLessEqual(buffered(transport), transport.bufferSize + 8192)
        pair.client.transport.resumeProducing()  # type: ignore[union-attr]
        await until(lambda: producer.events == ["pause", "resume"])
        self.assertEqual(buffered(transport), 0)
        await until(lambda: len(pair.client.received) == total)
        self.assertEqual(bytes(pair.client.received), pattern(0, total))
        transport.unregisterProducer()

    async def test_pullProducer(self) -> None:
        """A pull producer is asked for more each time the buffer drains, as with Twisted's transport."""
        (pair,) = await connect(self)
        transport = pair.transport
        chunks = [pattern(i * 30_000, 30_000) for i in range(6)]

        class Pull:
            def resumeProducing(self) -> None:
                if chunks:
                    transport.write(chunks.pop(0))
                else:
                    transport.unregisterProducer()
                    transport.loseConnection()

            def stopProducing(self) -> None:
                pass

        transport.registerProducer(Pull(), False)
        transport.write(b"")  # nothing: the producer is asked first by the reactor
        await pair.client.lost
        self.assertEqual(bytes(pair.client.received), pattern(0, 180_000))
        self.assertEqual(len(pair.server.reasons), 1)

    async def test_loseConnectionAfterPartialSend(self) -> None:
        """loseConnection after a send the kernel took only in part delivers everything, then closes cleanly, once."""
        (pair,) = await connect(self)
        pair.client.transport.pauseProducing()  # type: ignore[union-attr]
        data = pattern(0, 2_000_000)
        pair.transport.write(data)
        await tick()
        self.assertGreater(buffered(pair.transport), 0)  # the partial send happened
        self.assertLess(buffered(pair.transport), len(data))
        pair.transport.loseConnection()
        pair.transport.write(b"!")  # still buffered, as Twisted does while disconnecting
        pair.client.transport.resumeProducing()  # type: ignore[union-attr]
        await pair.ended(self)
        pair.client.reasons[0].trap(ConnectionDone)
        self.assertEqual(bytes(pair.client.received), data + b"!")

    async def test_loseConnectionInRead(self) -> None:
        """Writes and loseConnection in one read: the writes arrive, then a clean close."""
        (pair,) = await connect(self)

        def answer(data: bytes) -> None:
            pair.transport.write(b"bye")
            pair.transport.loseConnection()
            pair.transport.write(b"!")

        pair.askInRead(answer)
        await pair.ended(self)
        pair.client.reasons[0].trap(ConnectionDone)
        self.assertEqual(bytes(pair.client.received), b"bye!")

    async def test_halfClose(self) -> None:
        """loseWriteConnection after writes (in a read and outside): the peer reads them all, then the end; the connection still reads."""
        (pair,) = await connect(self, halfClose=True)
        pair.transport.write(b"first,")

        def answer(data: bytes) -> None:
            if data == b"?":
                pair.transport.write(b"second,")
                pair.transport.loseWriteConnection()
                pair.transport.write(b"third")

        pair.askInRead(answer)
        await until(lambda: pair.client.readEnded)
        self.assertEqual(bytes(pair.client.received), b"first,second,third")
        pair.client.transport.write(b"still")  # type: ignore[union-attr]
        await until(lambda: pair.server.received.endswith(b"still"))
        pair.transport.write(b"ignored")  # the write side is closed
        pair.client.transport.loseConnection()  # type: ignore[union-attr]
        await pair.ended(self)
        self.assertEqual(bytes(pair.client.received), b"first,second,third")

    async def test_abortInRead(self) -> None:
        """After abortConnection nothing more is sent, and connectionLost comes once, with ConnectionAborted.  (What was written before it may have been sent already, as with asyncio's abort: the kernel had it.)"""
        (pair,) = await connect(self)

        def answer(data: bytes) -> None:
            pair.transport.write(b"before")
            pair.transport.abortConnection()
            pair.transport.write(b"never")

        pair.askInRead(answer)
        (await pair.ended(self)).trap(ConnectionAborted)
        self.assertIn(bytes(pair.client.received), (b"", b"before"))

    async def _resetWhileWriting(self, writeThrough: bool) -> Failure:
        (pair,) = await connect(self, writeThrough=writeThrough)
        # The server does not read: it finds the reset by writing.
        pair.transport.stopReading()
        sock = pair.client.transport.getHandle()  # type: ignore[union-attr]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        pair.client.transport.abortConnection()  # type: ignore[union-attr]
        await pair.client.lost
        await tick(0.05)
        for _ in range(3):
            pair.transport.write(pattern(0, 50_000))
            await tick(0.01)
        await until(lambda: bool(pair.server.reasons))
        pair.transport.write(b"after")  # a no-op now
        await tick(0.01)
        self.assertEqual(len(pair.server.reasons), 1)
        return pair.server.reasons[0]

    async def test_peerReset(self) -> None:
        """A peer that resets while the server writes gives one connectionLost, with the reason Twisted's transport gives."""
        ordinary = await self._resetWhileWriting(False)
        through = await self._resetWhileWriting(True)
        self.assertIs(through.type, ordinary.type)
        through.trap(ConnectionLost)

    async def test_peerResetMidWrite(self) -> None:
        """A peer that resets with much still buffered gives one connectionLost."""
        (pair,) = await connect(self)
        pair.client.transport.pauseProducing()  # type: ignore[union-attr]
        pair.transport.write(pattern(0, 2_000_000))
        self.assertGreater(buffered(pair.transport), 0)
        sock = pair.client.transport.getHandle()  # type: ignore[union-attr]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        pair.client.transport.abortConnection()  # type: ignore[union-attr]
        await until(lambda: bool(pair.server.reasons))
        pair.transport.write(b"after")
        await tick(0.02)
        self.assertEqual(len(pair.server.reasons), 1)
        self.assertLess(len(pair.client.received), 2_000_000)


class ReadingSocket:
    """
    A socket whose C{recv} and C{recv_into} calls are counted (test double: everything
    else is the real socket's).
    """

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.recvs = 0
        self.recvIntos = 0

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        return self.real.recv(size)

    def recv_into(self, buffer: Any, size: int) -> int:
        self.recvIntos += 1
        return self.real.recv_into(buffer, size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class SharedReadsTests(TestCase):
    """
    Reads into the buffer of the reactor's connections (PyPy's way; forced on here)
    deliver what Twisted's own reads deliver.
    """

    timeout = 30

    def setUp(self) -> None:
        self.original = vars(_writethrough._WriteThroughServer)["_sharedReads"]
        self.patch(_writethrough._WriteThroughServer, "_sharedReads", True)

    def counted(self, pair: Connected) -> ReadingSocket:
        """Count the reads of the server's end of C{pair}."""
        sock = ReadingSocket(pair.transport.socket)
        pair.transport.socket = sock
        return sock

    def test_pypyOnly(self) -> None:
        """Reads go into the reactor's buffer on PyPy only."""
        self.assertEqual(self.original, sys.implementation.name == "pypy")

    async def test_streamInOrder(self) -> None:
        """Bytes sent faster than they are read, more than the reactor's buffer holds, arrive whole, in order, as bytes, one recv_into per read, and the client's close ends the connection cleanly."""
        (pair,) = await connect(self)
        sock = self.counted(pair)
        types: set[type] = set()
        pair.server.onData = lambda data: types.add(type(data))
        data = pattern(0, 300_000)
        pair.client.transport.write(data)  # type: ignore[union-attr]
        await until(lambda: len(pair.server.received) >= len(data))
        self.assertEqual(bytes(pair.server.received), data)
        self.assertEqual(types, {bytes})
        self.assertGreater(sock.recvIntos, 1)
        self.assertEqual(sock.recvs, 0)
        pair.client.transport.loseConnection()  # type: ignore[union-attr]
        reason = await pair.ended(self)
        reason.trap(ConnectionDone)

    async def test_readsKeptApart(self) -> None:
        """Reads of two connections in one iteration each deliver their own bytes."""
        first, second = await connect(self, clients=2)
        first.client.transport.write(b"a" * 1000)  # type: ignore[union-attr]
        second.client.transport.write(b"b" * 10)  # type: ignore[union-attr]
        await until(lambda: len(first.server.received) + len(second.server.received) == 1010)
        self.assertEqual(bytes(first.server.received), b"a" * 1000)
        self.assertEqual(bytes(second.server.received), b"b" * 10)

    async def test_largerBufferSize(self) -> None:
        """A connection whose bufferSize is larger than the reactor's buffer reads with recv."""
        (pair,) = await connect(self)
        sock = self.counted(pair)
        pair.transport.bufferSize = 2**17
        pair.client.transport.write(b"x" * 5000)  # type: ignore[union-attr]
        await until(lambda: len(pair.server.received) == 5000)
        self.assertEqual(sock.recvIntos, 0)
        self.assertGreater(sock.recvs, 0)

    async def test_smallerBufferSize(self) -> None:
        """A connection whose bufferSize is smaller reads into the reactor's buffer, no more than bufferSize at a time."""
        (pair,) = await connect(self)
        sock = self.counted(pair)
        pair.transport.bufferSize = 1000
        reads: list[int] = []
        pair.server.onData = lambda data: reads.append(len(data))
        pair.client.transport.write(b"x" * 5000)  # type: ignore[union-attr]
        await until(lambda: len(pair.server.received) == 5000)
        self.assertEqual(sock.recvs, 0)
        self.assertLessEqual(max(reads), 1000)

    async def test_nothingToRead(self) -> None:
        """A read with nothing to read (EWOULDBLOCK) delivers nothing and keeps the connection."""
        (pair,) = await connect(self)
        self.assertIsNone(pair.transport.doRead())
        self.assertEqual(pair.server.received, bytearray())
        self.assertTrue(pair.transport.connected)

    async def test_peerReset(self) -> None:
        """A peer that resets the connection: one connectionLost, ConnectionLost, as with Twisted's reads."""
        (pair,) = await connect(self)
        sock = self.counted(pair)
        client = pair.client.transport.getHandle()  # type: ignore[union-attr]
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        pair.client.transport.abortConnection()  # type: ignore[union-attr]
        await until(lambda: bool(pair.server.reasons))
        await tick(0.01)
        self.assertEqual(len(pair.server.reasons), 1)
        pair.server.reasons[0].trap(ConnectionLost)
        self.assertGreater(sock.recvIntos, 0)


class ProgramTests(TestCase):
    """
    Generated write programs (writes and write sequences of every size, in reads and in
    timer calls, with a slow reader, ending with loseConnection, loseWriteConnection or
    abortConnection) give the peer the same bytes and the same ends with write-through
    as with Twisted's transport.
    """

    timeout = 120

    async def _program(self, seed: int, writeThrough: bool) -> tuple[bytes, str, str, int]:
        rnd = random.Random(seed)
        pauses = random.Random(-seed)  # its own: the reads differ from run to run
        (pair,) = await connect(self, writeThrough=writeThrough)
        transport = pair.transport
        client = pair.client
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        written = 0

        def slow(data: bytes) -> None:
            if pauses.random() < 0.3:
                client.transport.pauseProducing()  # type: ignore[union-attr]
                reactor.callLater(0.003, client.transport.resumeProducing)  # type: ignore[union-attr]

        client.onData = slow

        def size() -> int:
            return rnd.choice([1, 7, 100, 1500, 20_000, 70_000, 150_000])

        def group() -> None:
            nonlocal written
            for _ in range(rnd.randint(1, 4)):
                if rnd.random() < 0.3:
                    parts = []
                    for _ in range(rnd.randint(0, 3)):
                        parts.append(pattern(written, size()))
                        written += len(parts[-1])
                    transport.writeSequence(parts)
                else:
                    data = pattern(written, size())
                    transport.write(data)
                    written += len(data)

        ending = rnd.choice(["lose", "lose", "half", "abort"])
        steps = rnd.randint(2, 6)
        inRead = [rnd.random() < 0.5 for _ in range(steps)]
        position = 0

        def advance() -> None:
            if position == steps:
                transport.unregisterProducer()
                if ending == "lose":
                    transport.loseConnection()
                elif ending == "half":
                    transport.loseWriteConnection()
                else:
                    group()
                    transport.abortConnection()
            elif inRead[position]:
                # One byte per step run in a read, sent only when asked: nothing is left
                # unread when the server closes (which would reset the connection).
                client.transport.write(b"?")  # type: ignore[union-attr]
            else:
                reactor.callLater(0, step)

        def step() -> None:
            nonlocal position
            group()
            position += 1
            advance()

        def onRead(data: bytes) -> None:
            if position < steps and inRead[position]:
                step()

        pair.server.onData = onRead
        advance()
        await client.lost
        await until(lambda: bool(pair.server.reasons))
        await tick(0.01)
        if ending != "abort":
            self.assertEqual(
                bytes(client.received), pattern(0, written), (seed, writeThrough, ending, inRead)
            )
        return (
            bytes(client.received) if ending != "abort" else b"",
            client.reasons[0].type.__name__,
            pair.server.reasons[0].type.__name__,
            len(pair.server.reasons),
        )

    async def test_programs(self) -> None:
        """Twenty generated programs end the same way, with the same bytes delivered, on both transports."""
        for seed in range(20):
            ordinary = await self._program(seed, False)
            through = await self._program(seed, True)
            self.assertEqual(through, ordinary, f"seed {seed}")


class SiteTests(TestCase):
    """
    A SockJSSite's connections over real sockets: the websocket after the upgrade and the
    xhr responses write through; TLS connections are left alone.
    """

    timeout = 30

    def _listen(self, site: SockJSFactory) -> int:
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    async def test_websocketAndXHR(self) -> None:
        """The websocket (same transport after the upgrade) and the xhr connections are write-through, and echo."""
        servers: list[Protocol] = []

        class Echo(Protocol):
            def connectionMade(self) -> None:
                servers.append(self)

            def dataReceived(self, data: bytes) -> None:
                self.transport.write(data)  # type: ignore[union-attr]

        site = SockJSFactory(Factory.forProtocol(Echo), reactor=reactor)
        channels: list[Any] = []
        build = site.buildProtocol

        def recordingBuild(addr: Any) -> Any:
            channel = build(addr)
            channels.append(channel)
            return channel

        site.buildProtocol = recordingBuild  # type: ignore[method-assign]
        base = f"http://127.0.0.1:{self._listen(site)}"
        from .test_integration import _Collector

        ws = _Collector(expected=2)
        await SockJSClient(reactor, base, "websocket").connect(ws)
        ws.transport.write(b"x" * 5)
        ws.transport.write(b"y" * 100_000)
        await ws.arrived
        self.assertEqual(ws.messages, [b"x" * 5, b"y" * 100_000])
        tcpTransport = servers[0].transport._session._sink.transport  # type: ignore[union-attr]
        self.assertIs(type(tcpTransport), _writethrough._WriteThroughServer)
        ws.transport.loseConnection()
        await ws.lost

        channels.clear()
        xhr = _Collector(expected=1)
        await SockJSClient(reactor, base, "xhr-polling").connect(xhr)
        xhr.transport.write(b"z")
        await xhr.arrived
        self.assertEqual(xhr.messages, [b"z"])
        live = [type(c.transport) for c in channels if c.transport is not None]
        self.assertTrue(live)
        self.assertEqual(set(live), {_writethrough._WriteThroughServer})
        xhr.transport.loseConnection()
        await xhr.lost

    async def test_tlsUntouched(self) -> None:
        """Over TLS the channel's transport and the TCP connection under it keep their classes, and the site answers."""
        from twisted.internet import ssl
        from twisted.protocols.tls import TLSMemoryBIOProtocol
        from twisted.test import __file__ as twistedTests

        pem = os.path.join(os.path.dirname(twistedTests), "server.pem")
        with open(pem, "rb") as f:
            certificate = ssl.PrivateCertificate.loadPEM(f.read())
        site = SockJSFactory(Factory.forProtocol(Protocol), reactor=reactor)
        channels: list[Any] = []
        build = site.buildProtocol

        def recordingBuild(addr: Any) -> Any:
            channel = build(addr)
            channels.append(channel)
            return channel

        site.buildProtocol = recordingBuild  # type: ignore[method-assign]
        port = reactor.listenSSL(0, site, certificate.options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        answer = Peer()
        factory = ClientFactory.forProtocol(lambda: answer)
        connector = reactor.connectSSL(
            "127.0.0.1", port.getHost().port, factory, ssl.CertificateOptions()
        )
        self.addCleanup(connector.disconnect)
        await answer.connected_
        answer.transport.write(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[union-attr]
        await until(lambda: b"}" in answer.received)
        self.assertTrue(bytes(answer.received).startswith(b"HTTP/1.1 200 OK\r\n"))
        (channel,) = channels
        self.assertIsInstance(channel.transport, TLSMemoryBIOProtocol)
        self.assertIs(type(channel.transport.transport), tcp.Server)
        answer.transport.loseConnection()  # type: ignore[union-attr]
        await answer.lost
