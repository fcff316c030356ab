"""
The twistd plugin: options, endpoints, the services it builds.
"""

from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted import SockJSResource
from sockjs_twisted._tap import Options, makeService

from ._harness import HTTPClient
from .test_session import RecordingFactory

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
            "14",
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
                "max_queue_size": 14,
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


class ServiceTests(SynchronousTestCase):
    def test_testServices(self) -> None:
        """By default every standard test service is served, each with its own settings."""
        reactor = MemoryReactorClock()
        service = makeService(parse("--port", "tcp:0"), reactor=reactor)
        [port] = [s for s in service if isinstance(s, StreamServerEndpointService)]
        site = port.factory
        root = site.resource
        names = sorted(root.children)
        self.assertEqual(
            names,
            sorted(
                [
                    b"echo",
                    b"close",
                    b"disabled_websocket_echo",
                    b"cookie_needed_echo",
                    b"ticker",
                    b"amplify",
                    b"broadcast",
                    b"multiplex",
                ]
            ),
        )
        self.assertEqual(root.children[b"echo"].options.response_limit, 4096)
        self.assertFalse(root.children[b"disabled_websocket_echo"].options.websocket)
        self.assertTrue(root.children[b"cookie_needed_echo"].options.jsessionid)
        self.assertEqual(root.children[b"ticker"].options.response_limit, 128 * 1024)
        self.assertEqual(root.children[b"close"].options.prefix, "/close")

    def test_userFactoryAtPrefix(self) -> None:
        """--factory with --prefix serves that factory there, and only there."""
        reactor = MemoryReactorClock()
        service = makeService(
            parse(
                "--port", "tcp:0", "--factory", "tests.test_tap.echoFactory", "--prefix", "/a/chat"
            ),
            reactor=reactor,
        )
        [port] = [s for s in service if isinstance(s, StreamServerEndpointService)]
        client = HTTPClient(port.factory.resource, reactor)
        built = len(echoFactory.built)
        self.assertEqual(client.get("/a/chat").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.get("/echo").status, 404)
        self.assertEqual(client.post("/a/chat/0/s/xhr").body, b"o\n")
        self.assertEqual(len(echoFactory.built), built + 1)

    def test_stopClosesSessions(self) -> None:
        """Stopping the service closes every session and stops the wrapped factory."""
        reactor = MemoryReactorClock()
        factory = RecordingFactory()
        service = makeService(parse("--port", "tcp:0"), reactor=reactor)
        [port] = [s for s in service if isinstance(s, StreamServerEndpointService)]
        endpoint = SockJSResource(factory, reactor=reactor)
        service.endpoints.append(endpoint)
        client = HTTPClient(endpoint, reactor)
        client.post("/0/s/xhr")
        service.startService()
        service.stopService()
        self.assertEqual(factory.built[0].events, ["makeConnection", "connectionLost"])
        self.assertEqual(factory.stops, 1)
