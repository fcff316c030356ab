"""
SockJSFactory and SockJSResource as servers: where they are mounted, what prefix they
report, and their lifecycle (the wrapped factory's start and stop, and the shutdown of
every session before the reactor stops), however they are mounted.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

import websocket
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorCore
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from sockjs_twisted import SockJSFactory, SockJSResource, SockJSSite
from sockjs_twisted._factory import mount

from ._fakes import RecordingFactory
from ._harness import HTTPClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHUTDOWN_FRAME = b'c[1001,"Server shutting down"]\n'


class ShutdownReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} whose system event triggers can be removed, and whose
    before-shutdown triggers a test fires.
    """

    def __init__(self) -> None:
        super().__init__()
        self.systemTriggers: dict[int, tuple[str, str, Callable[..., Any]]] = {}
        self._lastTrigger = 0

    def addSystemEventTrigger(  # type: ignore[override]
        self, phase: str, eventType: str, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> int:
        self._lastTrigger += 1
        self.systemTriggers[self._lastTrigger] = (
            phase,
            eventType,
            lambda: callable(*args, **kw),
        )
        return self._lastTrigger

    def removeSystemEventTrigger(self, triggerID: int) -> None:  # type: ignore[override]
        del self.systemTriggers[triggerID]

    def shutdownTriggers(self) -> int:
        return sum(
            1 for p, e, _ in self.systemTriggers.values() if (p, e) == ("before", "shutdown")
        )

    def fireBeforeShutdown(self) -> Deferred[Any]:
        """
        Run the before-shutdown triggers; the Deferred fires when theirs have, as the
        reactor waits for them before it disconnects everything.
        """
        waits = []
        for triggerID, (phase, event, call) in list(self.systemTriggers.items()):
            if (phase, event) == ("before", "shutdown"):
                del self.systemTriggers[triggerID]
                waits.append(maybeDeferred(call))
        return gatherResults(waits)


def leftoverCalls(reactor: MemoryReactorClock) -> list[Any]:
    """
    The delayed calls left on C{reactor}, but those of twisted.web's own C{Site} and
    HTTP channels (the access log's clock, idle timeouts).
    """
    return [
        call
        for call in reactor.getDelayedCalls()
        if not getattr(call.func, "__module__", "").startswith("twisted.")
    ]


def plainSite(reactor: MemoryReactorClock, *options: tuple[str, Resource]) -> HTTPClient:
    """
    A plain twisted.web C{Site} with each resource of C{options} at its path.
    """
    root = Resource()
    for path, resource in options:
        mount(root, path, resource)
    return HTTPClient(site=Site(root, reactor=reactor), clock=reactor)  # type: ignore[arg-type]


class BareResourceLifecycleTests(SynchronousTestCase):
    """
    A SockJSResource mounted in a plain Site: its reactor starts and stops it.
    """

    def setUp(self) -> None:
        self.reactor = ShutdownReactor()
        self.wrapped = RecordingFactory()
        self.resource = SockJSResource(self.wrapped, reactor=self.reactor)

    def test_startsWhenTheReactorRuns(self) -> None:
        """The wrapped factory starts when the reactor runs, not when the resource is made."""
        self.assertEqual(self.wrapped.starts, 0)
        self.assertEqual(self.reactor.shutdownTriggers(), 0)
        self.reactor.run()
        self.assertEqual(self.wrapped.starts, 1)
        self.assertEqual(self.reactor.shutdownTriggers(), 1)

    def test_startsAtOnceInARunningReactor(self) -> None:
        """A resource made while the reactor runs starts its wrapped factory at once."""
        self.reactor.run()
        wrapped = RecordingFactory()
        SockJSResource(wrapped, reactor=self.reactor)
        self.assertEqual(wrapped.starts, 1)

    def test_sessionsDoNotStartTheFactory(self) -> None:
        """Sessions never start the wrapped factory again: it started with the reactor."""
        self.reactor.run()
        client = plainSite(self.reactor, ("/chat", self.resource))
        client.post("/chat/000/a/xhr")
        client.post("/chat/000/b/xhr")
        self.assertEqual(len(self.wrapped.built), 2)
        self.assertEqual(self.wrapped.starts, 1)

    def test_shutdownClosesEverySession(self) -> None:
        """
        Before reactor shutdown every session gets connectionLost, open responses and
        websockets get 1001, the factory is stopped, and the reactor waits for the
        websocket's close handshake.
        """
        self.reactor.run()
        client = plainSite(self.reactor, ("/chat", self.resource))
        self.assertEqual(client.post("/chat/000/p/xhr").body, b"o\n")
        stream = client.post("/chat/000/s/xhr_streaming")
        ws = client.websocket("/chat/000/w/websocket")
        self.assertEqual(ws.frames(), ["o"])
        self.assertEqual(len(self.wrapped.built), 3)

        done = self.reactor.fireBeforeShutdown()

        for protocol in self.wrapped.built:
            self.assertEqual(protocol.events, ["makeConnection", "connectionLost"])
            self.assertIsInstance(protocol.lost.value, ConnectionDone)
        self.assertEqual(self.wrapped.stops, 1)
        client.pumpAll()
        self.assertTrue(stream.body.endswith(SHUTDOWN_FRAME), stream.body)
        self.assertTrue(stream.complete)
        self.assertEqual(ws.frames(), [(1001, "Server shutting down")])
        self.assertEqual((ws.closeCode, ws.closeReason), (1001, "Server shutting down"))
        self.assertNoResult(done)
        ws.sendClose(1001)
        self.assertTrue(ws.connection.closed)
        self.assertNoResult(done)  # one more turn, to write what the responses got
        self.reactor.advance(0)
        self.successResultOf(done)
        self.assertEqual(leftoverCalls(self.reactor), [])
        self.assertEqual(self.reactor.shutdownTriggers(), 0)

    def test_shutdownWaitIsBounded(self) -> None:
        """A websocket that never answers the close holds the shutdown 5 seconds at most."""
        self.reactor.run()
        client = plainSite(self.reactor, ("/chat", self.resource))
        ws = client.websocket("/chat/000/w/websocket")
        done = self.reactor.fireBeforeShutdown()
        self.reactor.advance(4.9)
        self.assertNoResult(done)
        self.reactor.advance(0.1)
        ws.pump()
        self.assertTrue(ws.connection.closed)
        self.reactor.advance(0)
        self.successResultOf(done)
        self.assertEqual(leftoverCalls(self.reactor), [])

    def test_stoppedRefusesSessions(self) -> None:
        """A stopped endpoint refuses new sessions with c[1001], until started again."""
        self.reactor.run()
        client = plainSite(self.reactor, ("/chat", self.resource))
        self.resource.stop()
        self.assertEqual(client.post("/chat/000/a/xhr").body, SHUTDOWN_FRAME)
        self.assertEqual(self.wrapped.built, [])
        self.resource.start()
        self.assertEqual(client.post("/chat/000/b/xhr").body, b"o\n")
        self.assertEqual(self.wrapped.starts, 2)

    def test_stopRemovesTheTrigger(self) -> None:
        """Once stopped, the shutdown trigger is gone; a later shutdown stops nothing twice."""
        self.reactor.run()
        stopped = self.resource.stop()
        self.reactor.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.reactor.shutdownTriggers(), 0)
        self.successResultOf(self.reactor.fireBeforeShutdown())
        self.assertEqual(self.wrapped.stops, 1)
        self.successResultOf(self.resource.stop())

    def test_shutdownDuringStop(self) -> None:
        """A reactor shutting down while a stop waits for a close handshake waits too."""
        self.reactor.run()
        client = plainSite(self.reactor, ("/chat", self.resource))
        ws = client.websocket("/chat/000/w/websocket")
        stopped = self.resource.stop()
        again = self.resource.stop()
        done = self.reactor.fireBeforeShutdown()
        self.reactor.advance(0)
        for d in (stopped, again, done):
            self.assertNoResult(d)
        ws.frames()
        ws.sendClose(1001)
        self.reactor.advance(0)
        for d in (stopped, again, done):
            self.successResultOf(d)
        self.assertEqual(self.wrapped.stops, 1)
        self.assertEqual(leftoverCalls(self.reactor), [])

    def test_stoppedBeforeTheReactorRuns(self) -> None:
        """A resource stopped before the reactor runs is not started by it."""
        self.resource.stop()
        self.reactor.run()
        self.assertEqual((self.wrapped.starts, self.reactor.shutdownTriggers()), (0, 0))

    def test_startIsIdempotent(self) -> None:
        """start() twice starts the wrapped factory once and registers one trigger."""
        self.resource.start()
        self.resource.start()
        self.reactor.run()
        self.assertEqual((self.wrapped.starts, self.reactor.shutdownTriggers()), (1, 1))

    def test_asService(self) -> None:
        """asService() starts the endpoint with the service and stops it when it stops."""
        reactor = MemoryReactorClock()  # never run: only the service starts it
        wrapped = RecordingFactory()
        resource = SockJSResource(wrapped, reactor=reactor)
        service = resource.asService()
        service.startService()
        self.assertEqual(wrapped.starts, 1)
        client = plainSite(reactor, ("/chat", resource))
        client.post("/chat/000/a/xhr")
        stopping = service.stopService()
        self.assertEqual(wrapped.built[0].events, ["makeConnection", "connectionLost"])
        self.assertEqual(wrapped.stops, 1)
        reactor.advance(0)
        self.successResultOf(stopping)

    def test_clockHasNoTriggers(self) -> None:
        """With a bare Clock, start and stop are the caller's: nothing else happens."""
        clock = Clock()
        self.assertFalse(IReactorCore.providedBy(clock))
        wrapped = RecordingFactory()
        resource = SockJSResource(wrapped, reactor=clock)
        self.assertEqual(wrapped.starts, 0)
        resource.start()
        d = resource.stop()
        clock.advance(0)
        self.successResultOf(d)
        self.assertEqual((wrapped.starts, wrapped.stops), (1, 1))


class SockJSFactoryTests(SynchronousTestCase):
    def test_listenable(self) -> None:
        """SockJSFactory can be given to listenTCP as it is."""
        reactor = MemoryReactorClock()
        factory = SockJSFactory(RecordingFactory(), reactor=reactor)
        reactor.listenTCP(8081, factory)
        self.assertIs(reactor.tcpServers[0][1], factory)

    def test_atRoot(self) -> None:
        """Without a prefix the endpoint is the site's root."""
        reactor = MemoryReactorClock()
        wrapped = RecordingFactory()
        site = SockJSFactory(wrapped, reactor=reactor)
        self.assertIs(site.resource, site.sockjsResource)
        client = HTTPClient(site=site, clock=reactor)
        self.assertEqual(client.get("/").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.post("/0/s/xhr").body, b"o\n")
        self.assertEqual(len(wrapped.built), 1)
        self.assertEqual(wrapped.built[0].transport.prefix, "")

    def test_atPrefix(self) -> None:
        """With a prefix the endpoint is served there, and only there."""
        reactor = MemoryReactorClock()
        client = HTTPClient(
            site=SockJSFactory(RecordingFactory(), reactor=reactor, prefix="/a/echo"),
            clock=reactor,
        )
        self.assertEqual(client.get("/a/echo").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.post("/a/echo/0/s/xhr").body, b"o\n")
        self.assertEqual(client.get("/").status, 404)
        self.assertEqual(client.post("/0/s/xhr").status, 404)

    def test_startsWhenListening(self) -> None:
        """The wrapped factory starts when the site starts listening, not before."""
        reactor = ShutdownReactor()
        reactor.run()
        wrapped = RecordingFactory()
        site = SockJSFactory(wrapped, reactor=reactor)
        self.assertEqual((wrapped.starts, reactor.shutdownTriggers()), (0, 0))
        site.doStart()  # what a port does when it starts listening
        site.doStart()  # a second port
        self.assertEqual((wrapped.starts, reactor.shutdownTriggers()), (1, 1))
        site.doStop()
        self.assertEqual(wrapped.stops, 0)
        site.doStop()  # the last port stopped listening
        reactor.advance(0)
        self.assertEqual((wrapped.stops, reactor.shutdownTriggers()), (1, 0))
        site.doStart()
        self.assertEqual(wrapped.starts, 2)

    def test_startStopForwarded(self) -> None:
        """The wrapped factory's doStart and doStop follow the Site's; stop closes sessions."""
        reactor = MemoryReactorClock()
        wrapped = RecordingFactory()
        site = SockJSFactory(wrapped, reactor=reactor)
        site.doStart()
        self.assertEqual(wrapped.starts, 1)
        client = HTTPClient(site=site, clock=reactor)
        stream = client.post("/0/s/xhr_streaming")
        site.doStop()
        site.doStop()
        self.assertEqual(wrapped.stops, 1)
        self.assertEqual(wrapped.built[0].events, ["makeConnection", "connectionLost"])
        client.pumpAll()
        self.assertTrue(stream.body.endswith(SHUTDOWN_FRAME))
        self.assertTrue(stream.complete)

    def test_reactorShutdown(self) -> None:
        """
        Reactor shutdown closes the sessions of a listening SockJSFactory before its port
        is torn down; stopping the port afterwards stops nothing twice.
        """
        reactor = ShutdownReactor()
        wrapped = RecordingFactory()
        site = SockJSFactory(wrapped, reactor=reactor, prefix="/chat")
        client = HTTPClient(site=site, clock=reactor)  # starts the site, as a port does
        ws = client.websocket("/chat/000/w/websocket")
        self.assertEqual(ws.frames(), ["o"])
        done = reactor.fireBeforeShutdown()
        self.assertEqual(wrapped.built[0].events, ["makeConnection", "connectionLost"])
        self.assertEqual(wrapped.stops, 1)
        self.assertEqual(ws.frames(), [(1001, "Server shutting down")])
        self.assertEqual(ws.closeCode, 1001)
        ws.sendClose(1001)
        reactor.advance(0)
        self.successResultOf(done)
        site.doStop()  # the reactor disconnects the port
        self.assertEqual(wrapped.stops, 1)

    def test_noTracebacks(self) -> None:
        """The site never renders tracebacks."""
        site = SockJSFactory(RecordingFactory(), reactor=MemoryReactorClock())
        self.assertFalse(site.displayTracebacks)

    def test_optionsValidated(self) -> None:
        """Bad options fail at construction."""
        self.assertRaises(ValueError, SockJSFactory, RecordingFactory(), heartbeat_delay=0)

    def test_siteKeywords(self) -> None:
        """SockJSFactory takes the site's bounds with SockJSSite's keyword names."""
        site = SockJSFactory(
            RecordingFactory(),
            reactor=MemoryReactorClock(),
            max_body_size=10,
            request_timeout=3,
            idle_timeout=4,
        )
        self.assertEqual((site.maxBodySize, site.requestTimeout, site.timeOut), (10, 3, 4))
        self.assertEqual(site.sockjsResource.options.max_body_size, 10)


class SockJSSiteTests(SynchronousTestCase):
    def test_keywords(self) -> None:
        """SockJSSite's keywords have the options' style: max_body_size, request_timeout, ..."""
        site = SockJSSite(
            Resource(),
            reactor=MemoryReactorClock(),
            max_body_size=10,
            request_timeout=3,
            idle_timeout=4,
        )
        self.assertEqual((site.maxBodySize, site.requestTimeout, site.timeOut), (10, 3, 4))

    def test_defaults(self) -> None:
        """By default: 1 MiB bodies, 30 s per request, 60 s idle."""
        site = SockJSSite(Resource(), reactor=MemoryReactorClock())
        self.assertEqual((site.maxBodySize, site.requestTimeout, site.timeOut), (1 << 20, 30, 60))


class MountTests(SynchronousTestCase):
    def test_besideOtherResources(self) -> None:
        """SockJSResource mounts anywhere in an existing tree, beside other resources."""
        reactor = MemoryReactorClock()
        root = Resource()
        other = Resource()
        root.putChild(b"api", other)
        mount(root, "/api/sock", SockJSResource(RecordingFactory(), reactor=reactor))
        self.assertIs(root.children[b"api"], other)
        client = HTTPClient(root, reactor)
        self.assertEqual(client.get("/api/sock/info").status, 200)

    def prefixes(self, path: str, **options: Any) -> list[str]:
        reactor = MemoryReactorClock()
        wrapped = RecordingFactory()
        client = plainSite(reactor, (path, SockJSResource(wrapped, reactor=reactor, **options)))
        client.post(f"{path}/000/a/xhr")
        client.post(f"{path}/000/b/xhr_streaming?t=1")
        client.websocket(f"{path}/000/c/websocket")
        client.websocket(f"{path}/websocket")
        self.assertEqual(len(wrapped.built), 4)
        return [p.transport.prefix for p in wrapped.built]

    def test_prefixFromTheRequest(self) -> None:
        """Without a prefix option, every transport reports the path it is mounted at."""
        self.assertEqual(self.prefixes("/chat"), ["/chat"] * 4)
        self.assertEqual(self.prefixes("/a/b/chat"), ["/a/b/chat"] * 4)

    def test_prefixOption(self) -> None:
        """A prefix option is reported as given, wherever the endpoint is mounted."""
        self.assertEqual(self.prefixes("/chat", prefix="/public/chat"), ["/public/chat"] * 4)

    def test_prefixAtTheRoot(self) -> None:
        """An endpoint at a site's root reports the empty prefix, as sockjs-node's default."""
        reactor = MemoryReactorClock()
        wrapped = RecordingFactory()
        client = HTTPClient(site=Site(SockJSResource(wrapped, reactor=reactor), reactor=reactor))  # type: ignore[arg-type]
        client.post("/000/a/xhr")
        client.websocket("/websocket")
        self.assertEqual([p.transport.prefix for p in wrapped.built], ["", ""])


def documentedPattern() -> dict[str, Any]:
    """
    Run the first code block after the C{binary-pattern} label of docs/api.rst, and return
    what it defines: the test runs the code the documentation shows.
    """
    with open(os.path.join(ROOT, "docs", "api.rst"), encoding="utf-8") as f:
        text = f.read()
    after = text[text.index(".. _binary-pattern:") :]
    block = after[after.index(".. code-block:: python") :].split("\n")[1:]
    lines: list[str] = []
    for line in block:
        if line and not line.startswith("   "):
            break
        lines.append(line[3:])
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "docs/api.rst (binary-pattern)", "exec"), namespace)
    return namespace


class Int32Echo(Int32StringReceiver):
    """
    A binary protocol: each string it receives, it sends back.
    """

    def stringReceived(self, string: bytes) -> None:
        self.sendString(string)


class TextOnlyPatternTests(SynchronousTestCase):
    """
    The documented pattern carries a binary protocol's stream over SockJS.
    """

    def setUp(self) -> None:
        pattern = documentedPattern()
        self.reactor = MemoryReactorClock()
        factory = pattern["Base64Factory"](Factory.forProtocol(Int32Echo))
        self.client = plainSite(
            self.reactor, ("/bin", SockJSResource(factory, reactor=self.reactor))
        )
        # Every byte value, and length prefixes that are not UTF-8 (200 = 0xc8, 128 = 0x80).
        self.strings = [bytes(range(256)), b"\xff" * 200, bytes(range(128, 256))]
        self.stream = b"".join(struct.pack("!I", len(s)) + s for s in self.strings)
        # Pieces cut anywhere, even inside a length prefix: it is a stream.
        cuts = [0, 3, 7, 300, 301, len(self.stream)]
        self.messages = [
            base64.b64encode(self.stream[a:b]).decode("ascii") for a, b in zip(cuts, cuts[1:])
        ]

    def test_overXHR(self) -> None:
        """Int32StringReceiver behind Base64Factory echoes every byte over xhr."""
        self.assertEqual(self.client.post("/bin/000/s/xhr").body, b"o\n")
        send = self.client.post("/bin/000/s/xhr_send", json.dumps(self.messages).encode())
        self.assertEqual(send.status, 204)
        poll = self.client.post("/bin/000/s/xhr").body
        self.assertTrue(poll.startswith(b"a"), poll)
        echoed = b"".join(base64.b64decode(m) for m in json.loads(poll[1:]))
        self.assertEqual(echoed, self.stream)

    def test_overWebSocket(self) -> None:
        """Int32StringReceiver behind Base64Factory echoes every byte over a websocket."""
        ws = self.client.websocket("/bin/000/s/websocket")
        self.assertEqual(ws.frames(), ["o"])
        for message in self.messages:
            ws.sendText(json.dumps([message]))
        self.reactor.advance(0)
        echoed = b"".join(base64.b64decode(m) for frame in ws.frames() for m in frame)
        self.assertEqual(echoed, self.stream)

    def test_notBase64(self) -> None:
        """A message that is not base64 closes the session with 4000."""
        ws = self.client.websocket("/bin/000/s/websocket")
        ws.frames()
        ws.sendText(json.dumps(["not base64!"]))
        self.reactor.advance(0)
        self.assertEqual(ws.frames(), [(4000, "Not base64.")])


class ServerProcess:
    """
    C{python -m tests._shutdownserver MODE}: a real reactor serving a real socket.  A
    thread reads its output, so that no wait for a line can hang the test.
    """

    def __init__(self, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests._shutdownserver", mode],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._incoming: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.waitFor(r"port (\d+)").group(1))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._incoming.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._incoming.put(None)

    def _pull(self, timeout: float) -> bool:
        try:
            line = self._incoming.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            self._incoming.put(None)
            return False
        self.lines.append(line)
        return True

    def waitFor(self, pattern: str) -> re.Match[str]:
        """
        The first line seen so far, or within 30 seconds, that matches C{pattern}.
        """
        deadline = time.monotonic() + 30
        seen = 0
        while True:
            for line in self.lines[seen:]:
                match = re.fullmatch(pattern, line)
                if match:
                    return match
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or not self._pull(left):
                raise AssertionError(
                    f"no line {pattern!r} from the server:\n" + "\n".join(self.lines)
                )

    def finish(self) -> tuple[int, list[str]]:
        """
        Wait for the process to exit: its exit code and every line it wrote.
        """
        code = self.process.wait(30)
        self._reader.join(30)
        while self._pull(0):
            pass
        return code, self.lines

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


class RealShutdownTests(SynchronousTestCase):
    """
    A server on a real reactor and a real socket, stopped as a deployment is (SIGTERM),
    with a websocket and an xhr-streaming session open.
    """

    def shutdown(self, mode: str) -> None:
        server = ServerProcess(mode)
        self.addCleanup(server.kill)
        # The wrapped factory starts with the listening (factory) or the reactor (site),
        # before any session.
        server.waitFor("startFactory")
        base = f"127.0.0.1:{server.port}"

        ws = websocket.create_connection(f"ws://{base}/chat/000/w1/websocket", timeout=10)
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv(), "o")
        ws.send('["hi"]')
        self.assertEqual(ws.recv(), 'a["hi"]')

        xhr = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.addCleanup(xhr.close)
        xhr.sendall(
            b"POST /chat/000/x1/xhr_streaming HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Length: 0\r\n\r\n" % base.encode("ascii")
        )
        streamed = b""
        while b"\no\n" not in streamed:
            chunk = xhr.recv(65536)
            self.assertTrue(chunk, streamed)
            streamed += chunk
        server.waitFor("made x1 /chat")

        server.process.send_signal(signal.SIGTERM)

        opcode, frame = ws.recv_data_frame(True)
        self.assertEqual((opcode, frame.data), (0x1, SHUTDOWN_FRAME.rstrip(b"\n")))
        opcode, frame = ws.recv_data_frame(True)  # answers the close, as browsers do
        self.assertEqual(opcode, 0x8)
        self.assertEqual(struct.unpack("!H", frame.data[:2])[0], 1001)
        while True:
            chunk = xhr.recv(65536)
            if not chunk:
                break
            streamed += chunk
        self.assertIn(SHUTDOWN_FRAME, streamed)

        code, lines = server.finish()
        self.assertEqual(code, 0, "\n".join(lines))
        events = [line for line in lines if line.split(" ")[0] in ("made", "lost", "stopFactory")]
        self.assertEqual(events[:2], ["made w1 /chat", "made x1 /chat"])
        self.assertEqual(sorted(events[2:4]), ["lost w1 ConnectionDone", "lost x1 ConnectionDone"])
        self.assertEqual(events[4:], ["stopFactory"])
        self.assertEqual(lines[-1], "reactor stopped")

    def test_resourceInAPlainSite(self) -> None:
        """SockJSResource in a plain Site on listenTCP shuts down cleanly with the reactor."""
        self.shutdown("site")

    def test_sockjsFactory(self) -> None:
        """SockJSFactory on listenTCP shuts down cleanly with the reactor."""
        self.shutdown("factory")
