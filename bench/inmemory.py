"""
In-memory profiles of our server's hot paths, without sockets or a load generator: a real
SockJSFactory (twisted.web + Autobahn) on a MemoryReactorClock, fed prebuilt bytes over
StringTransports.  The work done is deterministic, so before/after comparisons are
steady on a busy machine when run under a deterministic tool:

    python bench/inmemory.py echo --count 20000 --profile      # cProfile, top functions
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/inmemory.py echo --count 2000               # instruction counts
    python bench/inmemory.py setup-client-close --count 2000
    python bench/inmemory.py setup-server-close --count 2000
    python bench/inmemory.py idle --count 2000                  # tracemalloc bytes/session

Scenarios:

- C{echo}: one websocket session; each read carries C{--batch} masked 32-byte text frames
  (each a SockJS message array of one message); the echo protocol answers each.
- C{setup-client-close}: open a websocket session (upgrade request, C{o}), the client sends
  a close frame, the server answers and the connection ends.
- C{setup-server-close}: open a session whose protocol closes it at once (C{c[3000,..]}),
  the client answers the close frame.
- C{idle}: open C{--count} websocket sessions and keep them; report the Python heap growth
  per session (tracemalloc).
- C{xhr}: xhr_send + xhr poll cycles on one session.
- C{xhr-streaming}: one session receiving on an xhr_streaming response (reopened when
  C{response_limit} ends it) and sending on a second connection: an xhr_send, and its echo
  on the stream, per operation.

Prints the process CPU time per operation (only meaningful on a quiet machine) and, with
C{--profile}, the cProfile top functions by internal time.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import struct
import sys
import time
from typing import Any, Callable

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sockjs_twisted import SockJSFactory  # noqa: E402  (this checkout's, not an installed one)


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


class Closer(Protocol):
    def connectionMade(self) -> None:
        self.transport.loseConnection()  # type: ignore[union-attr]


def maskedFrame(opcode: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


UPGRADE = (
    "GET /echo/000/{sid}/websocket HTTP/1.1\r\n"
    "Host: 127.0.0.1:8081\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)


class Server:
    def __init__(self, factory: Any) -> None:
        self.clock = MemoryReactorClock()
        self.site = SockJSFactory(factory, reactor=self.clock, prefix="/echo")
        self.site.startFactory()
        self._n = 0

    def connect(self) -> tuple[Any, StringTransport]:
        self._n += 1
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8081),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 10000 + self._n % 50000),
        )
        protocol = self.site.buildProtocol(transport.getPeer())
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport

    def openWebSocket(self) -> tuple[Any, StringTransport]:
        protocol, transport = self.connect()
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = UPGRADE.format(sid=f"s{self._n}", key=key).encode("ascii")
        protocol.dataReceived(request)
        protocol = transport.protocol  # Autobahn's now
        out = transport.value()
        assert out.startswith(b"HTTP/1.1 101"), out[:200]
        assert out.endswith(b"\x81\x01o"), out[-40:]
        transport.clear()
        return protocol, transport


def scenarioEcho(count: int, batch: int) -> Callable[[], int]:
    server = Server(Factory.forProtocol(Echo))
    protocol, transport = server.openWebSocket()
    frame = maskedFrame(0x1, b'["' + b"x" * 28 + b'"]')
    read = frame * batch
    reads = count // batch

    def run() -> int:
        for _ in range(reads):
            protocol.dataReceived(read)
            out = transport.value()
            transport.clear()
        assert out.startswith(b"\x81"), out[:40]
        return reads * batch

    return run


CLOSE_FRAME = maskedFrame(0x8, struct.pack("!H", 1000))


def scenarioSetup(count: int, serverCloses: bool) -> Callable[[], int]:
    server = Server(Factory.forProtocol(Closer if serverCloses else Echo))

    def run() -> int:
        for _ in range(count):
            protocol, transport = (
                server.openWebSocket() if not serverCloses else _openClosed(server)
            )
            protocol.dataReceived(CLOSE_FRAME)
            transport.clear()
            assert transport.disconnecting
            protocol.connectionLost(_DONE)
        assert not server.site.sockjsResource.sessions.openSessions()
        return count

    return run


def _openClosed(server: Server) -> tuple[Any, StringTransport]:
    protocol, transport = server.connect()
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    protocol.dataReceived(UPGRADE.format(sid=f"s{server._n}", key=key).encode("ascii"))
    out = transport.value()
    assert b'c[3000,"Go away!"]' in out, out[-80:]
    transport.clear()
    return transport.protocol, transport


def _done() -> Any:
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    return Failure(ConnectionDone())


_DONE = _done()


def scenarioXhr(count: int) -> Callable[[], int]:
    server = Server(Factory.forProtocol(Echo))
    protocol, transport = server.connect()
    protocol.dataReceived(
        b"POST /echo/000/x1/xhr HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    )
    assert b"o\n" in transport.value()
    transport.clear()
    body = b'["' + b"x" * 28 + b'"]'
    send = (
        b"POST /echo/000/x1/xhr_send HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    poll = b"POST /echo/000/x1/xhr HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"

    def run() -> int:
        for _ in range(count):
            protocol.dataReceived(send)
            protocol.dataReceived(poll)
            out = transport.value()
            transport.clear()
        assert b'a["' + b"x" * 28 + b'"]\n' in out, out[-80:]
        return count

    return run


def scenarioXhrStreaming(count: int) -> Callable[[], int]:
    server = Server(Factory.forProtocol(Echo))
    receiving, stream = server.connect()
    sending, sendTransport = server.connect()
    open_ = b"POST /echo/000/x1/xhr_streaming HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    receiving.dataReceived(open_)
    assert b"o\n" in stream.value()
    stream.clear()
    body = b'["' + b"x" * 28 + b'"]'
    send = (
        b"POST /echo/000/x1/xhr_send HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    frame = b'a["' + b"x" * 28 + b'"]\n'

    def run() -> int:
        nonlocal receiving, stream
        for _ in range(count):
            sending.dataReceived(send)
            sendTransport.clear()
            out = stream.value()
            stream.clear()
            if out.endswith(b"0\r\n\r\n"):
                # response_limit reached: the client opens the next stream, as sockjs-client
                # does.
                receiving.dataReceived(open_)
                stream.clear()
        assert frame in out, out[-80:]
        return count

    return run


def idle(count: int) -> None:
    import tracemalloc  # CPython only: PyPy has no _tracemalloc

    server = Server(Factory.forProtocol(Echo))
    keep = [server.openWebSocket() for _ in range(50)]  # warm caches and interned strings
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep += [server.openWebSocket() for _ in range(count)]
    after = tracemalloc.take_snapshot()
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"idle websocket session: {total / count / 1024:.2f} KiB of Python heap each")
    for s in sorted(stats, key=lambda s: -s.size_diff)[:15]:
        print(f"  {s.size_diff / count:8.0f} B  {s.traceback}")
    tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenario",
        choices=[
            "echo",
            "setup-client-close",
            "setup-server-close",
            "idle",
            "xhr",
            "xhr-streaming",
        ],
    )
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=20, help="echo: frames per read")
    parser.add_argument("--profile", action="store_true", help="cProfile the run")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the scenario this many times on one server, a line each (JIT warm-up)",
    )
    args = parser.parse_args()
    if args.scenario == "idle":
        idle(args.count)
        return
    run = {
        "echo": lambda: scenarioEcho(args.count, args.batch),
        "setup-client-close": lambda: scenarioSetup(args.count, False),
        "setup-server-close": lambda: scenarioSetup(args.count, True),
        "xhr": lambda: scenarioXhr(args.count),
        "xhr-streaming": lambda: scenarioXhrStreaming(args.count),
    }[args.scenario]()
    profiler = cProfile.Profile() if args.profile else None
    impl = sys.implementation.name
    for _ in range(args.rounds):
        start = time.process_time()
        if profiler is not None:
            profiler.enable()
        done = run()
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - start
        print(f"{impl} {args.scenario}: {done} ops, {cpu / done * 1e6:.2f} us CPU each")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
