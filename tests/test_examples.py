"""
Smoke tests of the examples in C{examples/}: each one's page and SockJS endpoint through a
real twisted.web Site on a fake clock (L{tests._harness}), its C{factory} through the
C{twistd sockjs} options, and each C{main()} as a real process on a real socket.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import HTTPChannel, HTTPFactory
from twisted.web.resource import Resource

from examples.chat import server as chat
from examples.echo import server as echo
from examples.lines import server as lines
from examples.lines.commands import CommandFactory
from examples.tokenauth import server as tokenauth
from examples.tokenauth.gate import TokenAuthFactory
from examples.tokenauth.tokens import TokenSigner
from sockjs_twisted._tap import Options, makeService
from sockjs_twisted.testing import ProtocolHarness

from ._harness import HTTPClient, Response, WebSocket
from ._processes import stopProcess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRELUDE = b"h" * 2048 + b"\n"
GO_AWAY = (3000, "Go away!")
DISCONNECT_DELAY = 5.0


def _twistedWebTimer(call: Any) -> bool:
    """
    Is this delayed call twisted.web's own (an idle connection's timeout, the log clock)?
    """
    return isinstance(getattr(call.func, "__self__", None), (HTTPFactory, HTTPChannel))


class Streaming:
    """
    One SockJS session over xhr_streaming (receiving) and xhr_send (sending).
    """

    def __init__(self, client: HTTPClient, url: str) -> None:
        self.client = client
        self.url = url
        self.response: Response = client.post(url + "/xhr_streaming")
        assert self.response.read() == PRELUDE + b"o\n", self.response.body

    def send(self, *messages: str) -> None:
        r = self.client.post(self.url + "/xhr_send", json.dumps(messages).encode("utf-8"))
        assert r.status == 204, (r.status, r.body)
        self.client.advance()

    def frames(self) -> list[Any]:
        """
        The frames that arrived since the last call: lists of messages, C{(code, reason)}.
        """
        self.client.advance()
        out: list[Any] = []
        for line in self.response.read().splitlines():
            if line.startswith(b"a"):
                out.append(json.loads(line[1:]))
            elif line.startswith(b"c"):
                out.append(tuple(json.loads(line[1:])))
        return out

    def messages(self) -> list[str]:
        return [m for frame in self.frames() if isinstance(frame, list) for m in frame]


class _ExampleTestCase(SynchronousTestCase):
    """
    One example's resource tree in a Site on a L{MemoryReactorClock}.
    """

    def serve(self, root: Resource) -> HTTPClient:
        self.client = HTTPClient(root, self.clock)
        self.addCleanup(self.assertNoTimersLeft)
        return self.client

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self._sessions = 0

    def sessionURL(self, prefix: str) -> str:
        self._sessions += 1
        return f"{prefix}/000/session-{self._sessions}"

    def websocket(self, prefix: str) -> WebSocket:
        """
        Open a SockJS websocket session under C{prefix}; the open frame is checked.
        """
        ws = self.client.websocket(self.sessionURL(prefix) + "/websocket")
        self.assertTrue(ws.open)
        received = ws.receive()
        self.assertEqual(received[:1], ["o"])
        # What the protocol wrote on connecting may follow in the same read: keep it.
        ws.messages[:0] = received[1:]
        return ws

    def streaming(self, prefix: str) -> Streaming:
        return Streaming(self.client, self.sessionURL(prefix))

    def sendWS(self, ws: WebSocket, *messages: str) -> None:
        ws.sendText(json.dumps(messages))
        self.client.advance()

    def receivedWS(self, ws: WebSocket) -> list[Any]:
        """
        The frames a websocket got since the last call, after this reactor turn.
        """
        self.client.advance()
        return ws.frames()

    def messagesWS(self, ws: WebSocket) -> list[str]:
        return [m for f in self.receivedWS(ws) if isinstance(f, list) for m in f]

    def assertNoTimersLeft(self) -> None:
        """
        Once every client has gone and the disconnect delay has passed, no SockJS (or
        example) timer is left on the clock.
        """
        for connection in self.client.connections:
            connection.close()
        self.client.advance(DISCONNECT_DELAY)
        pending = [c for c in self.clock.getDelayedCalls() if not _twistedWebTimer(c)]
        self.assertEqual(pending, [])


class EchoTests(_ExampleTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.serve(echo.resource(self.clock))

    def test_page(self) -> None:
        """GET / answers the HTML page, which loads sockjs-client and connects to /echo."""
        r = self.client.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        self.assertIn(b"sockjs.min.js", r.body)
        self.assertIn(b'"/echo"', r.body)

    def test_info(self) -> None:
        """The endpoint beside the page answers /echo/info."""
        r = self.client.get("/echo/info")
        self.assertEqual(r.status, 200)
        self.assertTrue(json.loads(r.body)["websocket"])

    def test_echoWebSocket(self) -> None:
        """Every message sent over a websocket comes back, in order, Unicode intact."""
        ws = self.websocket("/echo")
        self.sendWS(ws, "hello", "ünïcödé ☃", "")
        self.assertEqual(self.messagesWS(ws), ["hello", "ünïcödé ☃", ""])

    def test_echoStreaming(self) -> None:
        """Every message sent over xhr_send comes back on the xhr_streaming response."""
        session = self.streaming("/echo")
        session.send("one")
        session.send("two", "three")
        self.assertEqual(session.messages(), ["one", "two", "three"])


class ChatTests(_ExampleTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.serve(chat.resource(self.clock))

    def test_page(self) -> None:
        """GET / answers the chat page, which connects to /chat."""
        r = self.client.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn(b'"/chat"', r.body)

    def test_messageReachesOtherMember(self) -> None:
        """A message from a websocket member reaches a member on xhr-streaming, and its sender."""
        alice = self.websocket("/chat")
        self.assertEqual(
            self.messagesWS(alice), ["* you are guest-1; /nick NAME changes it; here: guest-1"]
        )
        bob = self.streaming("/chat")
        self.assertEqual(
            bob.messages(), ["* you are guest-2; /nick NAME changes it; here: guest-1, guest-2"]
        )
        self.assertEqual(self.messagesWS(alice), ["* guest-2 joined"])
        self.sendWS(alice, "hello, bob")
        self.assertEqual(bob.messages(), ["guest-1: hello, bob"])
        self.assertEqual(self.messagesWS(alice), ["guest-1: hello, bob"])
        bob.send("hi ☺")
        self.assertEqual(self.messagesWS(alice), ["guest-2: hi ☺"])

    def test_leaving(self) -> None:
        """A member whose session ends leaves the room, and the others are told."""
        alice = self.websocket("/chat")
        bob = self.websocket("/chat")
        self.receivedWS(alice)
        bob.sendClose()
        self.assertEqual(self.messagesWS(alice), ["* guest-2 left"])
        self.sendWS(alice, "anyone?")
        self.assertEqual(self.messagesWS(alice), ["guest-1: anyone?"])

    def test_nick(self) -> None:
        """/nick renames a member for everyone, and refuses names taken or malformed."""
        alice = self.websocket("/chat")
        bob = self.websocket("/chat")
        self.receivedWS(alice)
        self.receivedWS(bob)
        self.sendWS(alice, "/nick alice")
        self.assertEqual(self.messagesWS(bob), ["* guest-1 is now alice"])
        self.sendWS(bob, "/nick alice", "/nick no spaces please")
        self.assertEqual(
            self.messagesWS(bob),
            ["* alice is taken", "* a name is 1 to 24 letters, digits, '.', '-' or '_'"],
        )
        self.sendWS(alice, "still me")
        self.assertEqual(self.messagesWS(bob), ["alice: still me"])


class LinesTests(_ExampleTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.serve(lines.resource(self.clock))

    def test_page(self) -> None:
        """GET / answers the page, which ends each command with CR LF."""
        r = self.client.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn(b'"/lines"', r.body)
        self.assertIn(b'"\\r\\n"', r.body)

    def test_commands(self) -> None:
        """The LineReceiver greets, then answers each command line with one line per message."""
        ws = self.websocket("/lines")
        self.assertEqual(self.messagesWS(ws), ["READY (HELP for help)\r\n"])
        self.sendWS(ws, "ADD 2 3 37\r\n", "ECHO hi there\r\n", "frobnicate\r\n", "ADD x\r\n")
        self.assertEqual(
            self.messagesWS(ws),
            [
                "42\r\n",
                "hi there\r\n",
                "ERR unknown command: frobnicate\r\n",
                "ERR ADD takes whole numbers\r\n",
            ],
        )

    def test_linesAcrossMessages(self) -> None:
        """A line split over messages is put together, and two lines in one message get two answers."""
        session = self.streaming("/lines")
        self.assertEqual(session.messages(), ["READY (HELP for help)\r\n"])
        session.send("AD", "D 1 ")
        self.assertEqual(session.messages(), [])
        session.send("2\r\nECHO a\r\n")
        self.assertEqual(session.messages(), ["3\r\n", "a\r\n"])

    def test_quit(self) -> None:
        """QUIT answers BYE, then loseConnection closes the session with 3000 'Go away!'."""
        ws = self.websocket("/lines")
        self.receivedWS(ws)
        self.sendWS(ws, "QUIT\r\n")
        self.assertEqual(self.receivedWS(ws), [["BYE\r\n"], GO_AWAY])

    def test_sameProtocolOverTCP(self) -> None:
        """The very same factory serves plain TCP, as it always did."""
        protocol = CommandFactory().buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"ADD 2 3\r\nQUIT\r\n")
        self.assertEqual(transport.value(), b"READY (HELP for help)\r\n5\r\nBYE\r\n")
        self.assertTrue(transport.disconnecting)


class Greeted:
    """
    A recording L{Greeter} stand-in: who was served, and what they sent.
    """

    def __init__(self) -> None:
        self.users: list[str] = []

    def __call__(self, user: str) -> Any:
        self.users.append(user)
        return tokenauth.Greeter(user)


class TokenAuthTests(_ExampleTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.serve(tokenauth.resource(self.clock, secret=b"s3cret"))
        self.signer = TokenSigner(b"s3cret", self.clock)

    def authenticated(self, checkToken: Any) -> Greeted:
        """
        Serve a L{TokenAuthFactory} with C{checkToken} at C{/auth}.
        """
        from sockjs_twisted import SockJSResource

        greeted = Greeted()
        factory = TokenAuthFactory(checkToken, greeted, clock=self.clock)
        root = Resource()
        root.putChild(b"auth", SockJSResource(factory, self.clock, prefix="/auth"))
        self.serve(root)
        return greeted

    def test_page(self) -> None:
        """GET / answers the page, which sends its token first on /private."""
        r = self.client.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn(b'"/private"', r.body)
        self.assertIn(b"sock.send(token)", r.body)

    def test_goodToken(self) -> None:
        """A token from /token is accepted: the user is welcomed and served by name."""
        r = self.client.post("/token", b"alice")
        self.assertEqual(r.status, 200)
        ws = self.websocket("/private")
        self.sendWS(ws, r.text)
        self.assertEqual(self.messagesWS(ws), ["welcome, alice"])
        self.sendWS(ws, "hi")
        self.assertEqual(self.messagesWS(ws), ["alice: hi"])

    def test_goodTokenStreaming(self) -> None:
        """Token authentication works the same over the HTTP transports."""
        session = self.streaming("/private")
        session.send(self.signer.issue("bob"), "first")
        self.assertEqual(session.messages(), ["welcome, bob", "bob: first"])

    def test_badToken(self) -> None:
        """A forged token is refused with 4001 'Authentication failed' and nothing else."""
        ws = self.websocket("/private")
        forged = self.signer.issue("alice").rsplit(".", 1)[0] + ".AAAA"
        self.sendWS(ws, forged, "let me in anyway")
        self.assertEqual(self.receivedWS(ws), [(4001, "Authentication failed")])
        self.assertEqual(ws.closeCode, 4001)

    def test_otherSecret(self) -> None:
        """A token signed with another secret is refused."""
        ws = self.websocket("/private")
        self.sendWS(ws, TokenSigner(b"guess", self.clock).issue("alice"))
        self.assertEqual(self.receivedWS(ws), [(4001, "Authentication failed")])

    def test_expiredToken(self) -> None:
        """A token past its lifetime is refused."""
        token = self.client.post("/token", b"alice").text
        self.client.advance(61)
        ws = self.websocket("/private")
        self.sendWS(ws, token)
        self.assertEqual(self.receivedWS(ws), [(4001, "Authentication failed")])

    def test_noToken(self) -> None:
        """A session that sends no token within 10 seconds is closed with 4008."""
        ws = self.websocket("/private")
        self.client.advance(9.9)
        self.assertEqual(ws.frames(), [])
        self.client.advance(0.1)
        self.assertEqual(ws.frames(), [(4008, "Authentication timed out")])

    def test_tokenNeedsName(self) -> None:
        """/token without a name answers 400."""
        self.assertEqual(self.client.post("/token", b"").status, 400)

    def test_heldWhileChecking(self) -> None:
        """Messages that arrive while a slow check runs reach the user's protocol after it, in order."""
        checks: list[Deferred[Optional[str]]] = []

        def slowCheck(token: str) -> Deferred[Optional[str]]:
            checks.append(Deferred())
            return checks[-1]

        greeted = self.authenticated(slowCheck)
        ws = self.websocket("/auth")
        self.sendWS(ws, "token", "one")
        self.sendWS(ws, "two")
        self.assertEqual((len(checks), greeted.users, self.receivedWS(ws)), (1, [], []))
        checks[0].callback("carol")
        self.assertEqual(self.messagesWS(ws), ["welcome, carol", "carol: one", "carol: two"])

    def test_goneWhileChecking(self) -> None:
        """A session that ends while its token is checked cancels the check and builds no protocol."""
        cancelled: list[str] = []

        def slowCheck(token: str) -> Deferred[Optional[str]]:
            return Deferred(lambda d: cancelled.append(token))

        greeted = self.authenticated(slowCheck)
        ws = self.websocket("/auth")
        self.sendWS(ws, "token")
        self.assertEqual(cancelled, [])
        ws.sendClose()
        self.client.advance()
        self.assertEqual(cancelled, ["token"])
        self.assertEqual(greeted.users, [])

    def test_checkRaises(self) -> None:
        """A check that fails is logged and closes the session with 1011."""

        def broken(token: str) -> None:
            raise RuntimeError("the user database is down")

        greeted = self.authenticated(broken)
        ws = self.websocket("/auth")
        self.sendWS(ws, "token")
        self.assertEqual(self.receivedWS(ws), [(1011, "Internal error")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(greeted.users, [])

    def test_signer(self) -> None:
        """Tokens check out as issued, and malformed or tampered ones do not."""
        token = self.signer.issue("dave ☃")
        self.assertEqual(self.signer.check(token), "dave ☃")
        user, expiry, signature = token.split(".")
        for bad in ["", "...", "x", f"{user}.{expiry}", f"{user}.{int(expiry) + 1}.{signature}"]:
            self.assertIsNone(self.signer.check(bad), bad)


class ProtocolHarnessTests(SynchronousTestCase):
    """
    The examples through the testing kit, as docs/testing.rst shows it.
    """

    def test_chatRoom(self) -> None:
        """A chat message reaches every member, and a member who leaves is announced."""
        harness = ProtocolHarness(chat.ChatRoom())
        alice, bob = harness.connect(), harness.connect()
        harness.flush()
        bob.received.clear()
        alice.send(b"hello")
        harness.flush()
        self.assertEqual(bob.received, [b"guest-1: hello"])
        bob.disconnect()
        harness.flush()
        self.assertEqual(alice.received[-1], b"* guest-2 left")
        alice.disconnect()
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_tokenGate(self) -> None:
        """The gate closes a session with a bad token with 4001, and serves a good one."""
        harness = ProtocolHarness(
            TokenAuthFactory({"good": "frank"}.get, tokenauth.Greeter, clock=Clock())
        )
        bad, good = harness.connect(), harness.connect()
        bad.send(b"bad")
        good.send(b"good", b"hi")
        harness.flush()
        self.assertEqual((bad.closed, bad.received), ((4001, "Authentication failed"), []))
        self.assertEqual((good.closed, good.received), (None, [b"welcome, frank", b"frank: hi"]))


class TwistdTests(SynchronousTestCase):
    def test_factories(self) -> None:
        """Every example's C{factory} loads with C{twistd sockjs --factory}."""
        for name in ["echo", "chat", "lines", "tokenauth"]:
            config = Options()
            config.parseOptions(["--factory", f"examples.{name}.server.factory"])
            self.assertTrue(IProtocolFactory.providedBy(config["userFactory"]), name)

    def test_echoService(self) -> None:
        """C{twistd sockjs --factory examples.echo.server.factory --prefix /echo} echoes."""
        config = Options()
        config.parseOptions(
            ["--port", "8081", "--factory", "examples.echo.server.factory", "--prefix", "/echo"]
        )
        reactor = MemoryReactorClock()
        service = makeService(config, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        [(port, site, _, _)] = reactor.tcpServers
        self.assertEqual(port, 8081)
        client = HTTPClient(site.resource, reactor)
        ws = client.websocket("/echo/000/twistd/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.sendText('["via twistd"]')
        client.advance()
        self.assertEqual(ws.frames(), [["via twistd"]])
        ws.sendClose()


class Example:
    """
    C{python -m examples.<name>.server tcp:0:interface=127.0.0.1 ...}, and the ports it
    listens on.
    """

    def __init__(self, name: str, *endpoints: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"examples.{name}.server", *endpoints],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []
        self.ports = self._waitForPorts(len(endpoints))

    def _waitForPorts(self, count: int) -> list[int]:
        ports: list[int] = []
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while len(ports) < count and time.monotonic() < deadline:
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:
                break
            self.output.append(line)
            match = re.search(r"listening on .*port=(\d+)", line)
            if match:
                ports.append(int(match.group(1)))
        if len(ports) < count:
            self.stop()
            raise AssertionError("example did not start:\n" + "".join(self.output))
        return ports

    def stop(self) -> Optional[int]:
        """
        SIGTERM, as a person's Ctrl-C or a service manager would; the exit code.
        """
        stopProcess(self.process, timeout=10, killTimeout=None)
        stdout = self.process.stdout
        if stdout is not None and not stdout.closed:
            self.output.append(stdout.read().decode("utf-8", "replace"))
            stdout.close()
        return self.process.returncode


class MainTests(SynchronousTestCase):
    """
    Each example's C{main()}, run as a person would, on 127.0.0.1 and a free port.
    """

    LOCAL = "tcp:0:interface=127.0.0.1"

    def start(self, name: str, *endpoints: str) -> Example:
        example = Example(name, *(endpoints or (self.LOCAL,)))
        self.addCleanup(example.stop)
        return example

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()

    def post(self, port: int, path: str, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("POST", path, body)
        response = connection.getresponse()
        return response.status, response.read()

    def checkServes(self, example: Example, prefix: str) -> None:
        status, page = self.get(example.ports[0], "/")
        self.assertEqual(status, 200)
        self.assertIn(b"sockjs.min.js", page)
        status, info = self.get(example.ports[0], prefix + "/info")
        self.assertEqual(status, 200)
        self.assertIn("entropy", json.loads(info))

    def test_echo(self) -> None:
        """python -m examples.echo.server serves its page and echoes over xhr, then stops cleanly."""
        example = self.start("echo")
        self.checkServes(example, "/echo")
        port = example.ports[0]
        self.assertEqual(self.post(port, "/echo/000/main/xhr", b""), (200, b"o\n"))
        self.assertEqual(self.post(port, "/echo/000/main/xhr_send", b'["real"]'), (204, b""))
        self.assertEqual(self.post(port, "/echo/000/main/xhr", b""), (200, b'a["real"]\n'))
        self.assertEqual(example.stop(), 0)

    def test_chat(self) -> None:
        """python -m examples.chat.server serves its page and a room."""
        example = self.start("chat")
        self.checkServes(example, "/chat")
        port = example.ports[0]
        self.assertEqual(self.post(port, "/chat/000/main/xhr", b""), (200, b"o\n"))
        status, body = self.post(port, "/chat/000/main/xhr", b"")
        self.assertEqual(status, 200)
        self.assertIn(b"you are guest-1", body)
        self.assertEqual(example.stop(), 0)

    def test_lines(self) -> None:
        """python -m examples.lines.server serves the page, and telnet on its second endpoint."""
        example = self.start("lines", self.LOCAL, self.LOCAL)
        self.checkServes(example, "/lines")
        with socket.create_connection(("127.0.0.1", example.ports[1]), timeout=10) as telnet:
            telnet.sendall(b"ADD 40 2\r\nQUIT\r\n")
            received = b""
            while not received.endswith(b"BYE\r\n"):
                chunk = telnet.recv(1024)
                if not chunk:
                    break
                received += chunk
        self.assertEqual(received, b"READY (HELP for help)\r\n42\r\nBYE\r\n")
        self.assertEqual(example.stop(), 0)

    def test_tokenauth(self) -> None:
        """python -m examples.tokenauth.server issues tokens and serves /private."""
        example = self.start("tokenauth")
        self.checkServes(example, "/private")
        status, token = self.post(example.ports[0], "/token", b"erin")
        self.assertEqual(status, 200)
        self.assertRegex(token.decode("ascii"), r"^[\w-]+\.\d+\.[\w-]+$")
        self.assertEqual(example.stop(), 0)
