"""
The twistd plugin: options, endpoints, the services it builds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, IServiceMaker
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, formatEvent
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted._tap import Options, _Announcing, _locations, makeService

from . import _ci
from ._fakes import RecordingFactory
from ._harness import HTTPClient
from ._processes import runForOutput, stopProcess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = os.path.join(ROOT, ".venv", "bin", "twistd")
TEST_SERVICES = [
    "amplify",
    "broadcast",
    "close",
    "cookie_needed_echo",
    "disabled_websocket_echo",
    "echo",
    "multiplex",
    "ticker",
]

echoFactory = RecordingFactory()


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    def test_pluginRegistered(self) -> None:
        """twistd finds a 'sockjs' plugin pointing at sockjs_twisted._tap."""
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertEqual(makers["sockjs"].module, "sockjs_twisted._tap")

    def test_defaultPort(self) -> None:
        """Without --port the server listens on tcp:8081."""
        self.assertEqual(parse()["endpoints"], ["tcp:8081"])

    def test_barePort(self) -> None:
        """A bare port number means tcp:PORT."""
        self.assertEqual(parse("--port", "9999")["endpoints"], ["tcp:9999"])

    def test_descriptionsAndListen(self) -> None:
        """--port takes any endpoint description, and --listen adds more."""
        options = parse(
            "--port", "tcp:1:interface=127.0.0.1", "--listen", "unix:/tmp/s", "--listen", "2"
        )
        self.assertEqual(
            options["endpoints"], ["tcp:1:interface=127.0.0.1", "unix:/tmp/s", "tcp:2"]
        )

    def test_listenOnly(self) -> None:
        """With --listen and no --port, only the --listen endpoints are used."""
        self.assertEqual(parse("--listen", "3")["endpoints"], ["tcp:3"])

    def test_serverOptions(self) -> None:
        """Every server option has a flag."""
        options = parse(
            "--sockjs-url",
            "/sockjs.js",
            "--response-limit",
            "10",
            "--heartbeat-delay",
            "1.5",
            "--disconnect-delay",
            "2",
            "--max-message-size",
            "11",
            "--max-body-size",
            "12",
            "--max-sessions",
            "13",
            "--max-queue-size",
            "24",
            "--no-websocket",
            "--jsessionid",
            "--disable-cors",
            "--allowed-origin",
            "https://a",
            "--allowed-origin",
            "https://*.b",
        )
        self.assertEqual(
            options.serverOptions(),
            {
                "sockjs_url": "/sockjs.js",
                "response_limit": 10,
                "heartbeat_delay": 1.5,
                "disconnect_delay": 2.0,
                "max_message_size": 11,
                "max_body_size": 12,
                "max_sessions": 13,
                "max_queue_size": 24,
                "websocket": False,
                "jsessionid": True,
                "disable_cors": True,
                "allowed_origins": ["https://a", "https://*.b"],
            },
        )

    def test_badNumbers(self) -> None:
        """Bad numbers are usage errors."""
        for argv in [
            ("--response-limit", "x"),
            ("--heartbeat-delay", "-1"),
            ("--max-sessions", "0"),
        ]:
            self.assertRaises(UsageError, parse, *argv)

    def test_factoryByName(self) -> None:
        """--factory loads a factory by dotted name."""
        options = parse("--factory", "tests.test_tap.echoFactory", "--prefix", "/chat")
        self.assertIs(options["userFactory"], echoFactory)

    def test_factoryCallable(self) -> None:
        """--factory may name a callable returning a factory (a class, say)."""
        options = parse("--factory", "tests._fakes.RecordingFactory")
        self.assertIsInstance(options["userFactory"], RecordingFactory)

    def test_factoryBad(self) -> None:
        """--factory naming nothing, or no factory, is a usage error that says so."""
        e = self.assertRaises(UsageError, parse, "--factory", "no.such.thing")
        self.assertIn("cannot import", str(e))
        e = self.assertRaises(UsageError, parse, "--factory", "tests.test_tap.parse")
        self.assertIn("not a protocol factory", str(e))

    def test_prefixNeedsFactory(self) -> None:
        """--prefix without --factory is a usage error."""
        self.assertRaises(UsageError, parse, "--prefix", "/x")

    def test_badValues(self) -> None:
        """Values the server would refuse are usage errors that name the option."""
        for argv, message in [
            (("--allowed-origin", ""), "--allowed-origin needs an origin"),
            (("--port", "frob:1"), "bad endpoint description 'frob:1'"),
            (("--listen", "tcp:x"), "bad endpoint description 'tcp:x'"),
            (("--port", "ssl:1:privateKey=no-such.pem"), "bad endpoint description"),
            (
                ("--factory", "tests.test_tap.echoFactory", "--prefix", "chat"),
                "--prefix must be empty or start with '/'",
            ),
        ]:
            e = self.assertRaises(UsageError, parse, *argv)
            self.assertIn(message, str(e), argv)

    def test_twistdPrefixRefused(self) -> None:
        """`twistd --prefix /chat sockjs` (twistd's syslog prefix, by mistake) is a usage error."""
        e = self.assertRaises(
            UsageError, ServerOptions().parseOptions, ["-n", "--prefix", "/chat", "sockjs"]
        )
        self.assertIn("twistd -n sockjs --prefix /chat", str(e))

    def test_twistdPrefixWithSyslog(self) -> None:
        """With --syslog, twistd's --prefix is meant for twistd, and accepted."""
        config = ServerOptions()
        config.parseOptions(["--syslog", "--prefix", "myapp", "sockjs"])
        self.assertEqual((config["prefix"], config.subOptions["prefix"]), ("myapp", ""))


def _ports(service: IService) -> list[StreamServerEndpointService]:
    return [s for s in service if isinstance(s, StreamServerEndpointService)]  # type: ignore[attr-defined]


class _Port:
    """
    A listening port that is only an address.
    """

    def __init__(self, address: Any) -> None:
        self.address = address

    def getHost(self) -> Any:
        return self.address


class ServiceTests(SynchronousTestCase):
    def test_testServices(self) -> None:
        """By default every standard test service is served, each with its own settings."""
        reactor = MemoryReactorClock()
        service = makeService(parse("--port", "tcp:0"), reactor=reactor)
        [port] = _ports(service)
        root = port.factory.resource
        self.assertEqual(
            sorted(root.children), sorted([b""] + [n.encode() for n in TEST_SERVICES])
        )
        self.assertEqual(root.children[b"echo"].options.response_limit, 4096)
        self.assertFalse(root.children[b"disabled_websocket_echo"].options.websocket)
        self.assertTrue(root.children[b"cookie_needed_echo"].options.jsessionid)
        self.assertEqual(root.children[b"ticker"].options.response_limit, 128 * 1024)
        self.assertEqual(root.children[b"close"].options.prefix, "/close")

    def test_index(self) -> None:
        """GET / on the test services answers an HTML page that links every service."""
        reactor = MemoryReactorClock()
        [port] = _ports(makeService(parse("--port", "tcp:0"), reactor=reactor))
        response = HTTPClient(port.factory.resource, reactor).get("/")
        self.assertEqual(
            (response.status, response.header("content-type")),
            (200, "text/html; charset=utf-8"),
        )
        self.assertEqual(
            re.findall(r'<a href="([^"]+)"><code>/\1</code></a>: \w', response.text),
            TEST_SERVICES,
        )

    def test_userFactoryAtPrefix(self) -> None:
        """--factory with --prefix serves that factory there, and only there."""
        reactor = MemoryReactorClock()
        service = makeService(
            parse(
                "--port", "tcp:0", "--factory", "tests.test_tap.echoFactory", "--prefix", "/a/chat"
            ),
            reactor=reactor,
        )
        [port] = _ports(service)
        client = HTTPClient(port.factory.resource, reactor)
        built = len(echoFactory.built)
        self.assertEqual(client.get("/a/chat").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.get("/echo").status, 404)
        self.assertEqual(client.post("/a/chat/0/s/xhr").body, b"o\n")
        self.assertEqual(len(echoFactory.built), built + 1)

    def test_stopClosesUserSessions(self) -> None:
        """Stopping the service closes the sessions of the endpoint it serves, and stops the wrapped factory."""
        reactor = MemoryReactorClock()
        config = parse("--port", "tcp:0", "--factory", "tests._fakes.RecordingFactory")
        factory = config["userFactory"]
        service = makeService(config, reactor=reactor)
        [port] = _ports(service)
        client = HTTPClient(port.factory.resource, reactor)
        self.assertEqual(client.post("/0/s/xhr").body, b"o\n")
        service.startService()
        self.assertEqual(factory.built[0].events, ["makeConnection"])
        service.stopService()
        self.assertEqual(factory.built[0].events, ["makeConnection", "connectionLost"])
        self.assertEqual(factory.stops, 1)

    def test_stopClosesTestServiceSessions(self) -> None:
        """Stopping the service closes every test service's sessions with 1001."""
        reactor = MemoryReactorClock()
        service = makeService(parse("--port", "tcp:0"), reactor=reactor)
        [port] = _ports(service)
        client = HTTPClient(port.factory.resource, reactor)
        streams = {}
        for name in ["echo", "broadcast", "ticker"]:
            streams[name] = client.post(f"/{name}/0/s/xhr_streaming")
        service.startService()
        client.advance()
        opened = b"h" * 2048 + b"\n" + b"o\n"
        self.assertEqual({n: s.read() for n, s in streams.items()}, dict.fromkeys(streams, opened))
        service.stopService()
        client.advance()
        closed = b'c[1001,"Server shutting down"]\n'
        self.assertEqual({n: s.read() for n, s in streams.items()}, dict.fromkeys(streams, closed))

    def test_logsURLs(self) -> None:
        """Once listening, the server logs the URL of every endpoint."""
        events: list[dict[str, Any]] = []
        self.patch(_Announcing, "log", Logger(observer=events.append))
        reactor = MemoryReactorClock()
        service = makeService(parse("--port", "8081"), reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            sorted(formatEvent(e) for e in events),
            [f"SockJS {name} at http://127.0.0.1:8081/{name}" for name in TEST_SERVICES],
        )
        self.assertEqual(formatEvent(events[0]), "SockJS echo at http://127.0.0.1:8081/echo")

    def test_logsUserURL(self) -> None:
        """With --factory, the URL logged is the factory's, at its prefix."""
        events: list[dict[str, Any]] = []
        self.patch(_Announcing, "log", Logger(observer=events.append))
        reactor = MemoryReactorClock()
        config = parse("--port", "1", "--factory", "tests.test_tap.echoFactory", "--prefix", "/a")
        service = makeService(config, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["SockJS tests.test_tap.echoFactory at http://127.0.0.1:1/a"],
        )

    def test_locations(self) -> None:
        """Locations name the address listened on; every interface is shown as loopback."""
        paths = [("echo", "/echo"), ("mine", "/")]
        self.assertEqual(
            _locations(_Port(IPv4Address("TCP", "10.1.2.3", 80)), False, paths),
            [("echo", "http://10.1.2.3:80/echo"), ("mine", "http://10.1.2.3:80/")],
        )
        self.assertEqual(
            _locations(_Port(IPv4Address("TCP", "0.0.0.0", 8443)), True, paths[:1]),
            [("echo", "https://127.0.0.1:8443/echo")],
        )
        self.assertEqual(
            _locations(_Port(IPv6Address("TCP", "::", 8081)), False, paths[:1]),
            [("echo", "http://[::1]:8081/echo")],
        )
        self.assertEqual(
            _locations(_Port(UNIXAddress(b"/run/s.sock")), False, paths[:1]),
            [("echo", "/echo on unix:/run/s.sock")],
        )


class _Twistd:
    """
    A C{twistd} process, its output read line by line.
    """

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []

    def waitFor(self, pattern: str, timeout: float = 30) -> Optional[re.Match[str]]:
        """
        Read output until a line matches C{pattern} (the match), or the process ends (None).
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:
                return None
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def stop(self) -> Optional[int]:
        """
        SIGTERM, then the exit code.
        """
        stopProcess(self.process, timeout=10, killTimeout=None)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.output.append(self.process.stdout.read().decode("utf-8", "replace"))
            self.process.stdout.close()
        return self.process.returncode


class InstalledTwistdTests(SynchronousTestCase):
    """
    The C{twistd} that C{.ci/setup} (or C{pip install .}) installs in C{.venv}, run as a
    person runs it: from a folder outside the checkout, without C{PYTHONPATH}.
    """

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            _ci.missing(self, f"no {TWISTD}: run `bash .ci/setup`")
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.outside = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, self.outside)

    def twistdHelp(self, python: str) -> str:
        """
        C{twistd sockjs --help} with C{python}, from outside the checkout; its output.
        """
        code, output = runForOutput(
            [python, "-c", "from twisted.scripts.twistd import run; run()", "sockjs", "--help"],
            self.outside,
            self.env,
        )
        self.assertEqual(code, 0, output)
        return output

    def test_eitherOrder(self) -> None:
        """A plain install (the README's server set-up) and the editable one (.ci/setup's) follow each other in any order, and twistd sockjs works after each."""
        _ci.skipIfQuick("the install test (a venv and four pip installs)")
        venv = os.path.abspath(self.mktemp())
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
        python = os.path.join(venv, "bin", "python")
        purelib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            stdout=subprocess.PIPE,
            check=True,
        )
        # Twisted and the rest come from .venv, without its own .pth files (so without the
        # editable install there): only the project is installed, and nothing is fetched.
        with open(os.path.join(purelib.stdout.decode().strip(), "_deps.pth"), "w") as f:
            f.write(sysconfig.get_paths()["purelib"] + "\n")
        pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        plain = [*pip, ROOT]
        editable = [*pip, "-e", ROOT, "--config-settings", "editable_mode=compat"]
        for name, install in [
            ("pip install .", plain),
            (".ci/setup's editable install", editable),
            ("pip install . again", plain),
            (".ci/setup's again", editable),
        ]:
            result = subprocess.run(
                install, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300
            )
            self.assertEqual(result.returncode, 0, result.stdout.decode("utf-8", "replace"))
            self.assertIn(
                "Usage: twistd [options] sockjs [options]", self.twistdHelp(python), name
            )

    def test_help(self) -> None:
        """The installed `twistd sockjs --help` works from any folder (editable installs keep the plugin)."""
        code, output = runForOutput([TWISTD, "sockjs", "--help"], self.outside, self.env)
        self.assertEqual(code, 0, output)
        self.assertIn("Usage: twistd [options] sockjs [options]", output)
        self.assertIn("--factory=", output)


class RunningTwistdTests(SynchronousTestCase):
    """
    C{.venv/bin/twistd} running this checkout's code (C{PYTHONPATH}).
    """

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            _ci.missing(self, f"no {TWISTD}: run `bash .ci/setup`")
        self.cwd = self.mktemp()
        os.makedirs(self.cwd)
        self.env = dict(os.environ, PYTHONPATH=ROOT)

    def test_badValueIsAUsageLine(self) -> None:
        """A bad option value ends in one usage-error line and exit code 1, not a traceback."""
        code, output = runForOutput(
            [TWISTD, "-n", "--pidfile=", "sockjs", "--allowed-origin", ""], self.cwd, self.env
        )
        self.assertEqual(code, 1, output)
        self.assertNotIn("Traceback", output)
        self.assertRegex(output.splitlines()[-1], r"twistd -n: --allowed-origin needs an origin")

    def test_saysWhereItIs(self) -> None:
        """`twistd -n sockjs` logs each service's URL, and answers there and at / (this checkout's code)."""
        twistd = _Twistd(
            [TWISTD, "-n", "--pidfile=", "sockjs", "--port", "tcp:0:interface=127.0.0.1"],
            self.cwd,
            self.env,
        )
        self.addCleanup(twistd.stop)
        found = twistd.waitFor(r"SockJS echo at (http://127\.0\.0\.1:\d+/echo)$")
        self.assertIsNotNone(found, "".join(twistd.output))
        assert found is not None
        url = found.group(1)
        with urllib.request.urlopen(url, timeout=10) as response:
            self.assertEqual(response.read(), b"Welcome to SockJS!\n")
        with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/", timeout=10) as response:
            self.assertIn(b'<a href="echo">', response.read())
        # twistd ends by re-raising the signal it was stopped with.
        self.assertEqual(twistd.stop(), -signal.SIGTERM, "".join(twistd.output))
        self.assertIn("Server Shut Down.", "".join(twistd.output))
        self.assertEqual(os.listdir(self.cwd), [], "--pidfile= leaves no twistd.pid")
