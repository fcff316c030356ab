"""
SockJSFactory: a listenable Site around an ordinary factory.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from sockjs_twisted import SockJSFactory, SockJSResource
from sockjs_twisted._factory import mount

from ._fakes import RecordingFactory
from ._harness import HTTPClient


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
        client = HTTPClient(site=SockJSFactory(wrapped, reactor=reactor), clock=reactor)
        self.assertEqual(client.get("/").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.post("/0/s/xhr").body, b"o\n")
        self.assertEqual(len(wrapped.built), 1)

    def test_atPrefix(self) -> None:
        """With a prefix the endpoint is served there, and only there."""
        reactor = MemoryReactorClock()
        client = HTTPClient(
            site=SockJSFactory(RecordingFactory(), reactor=reactor, prefix="/a/echo"), clock=reactor
        )
        self.assertEqual(client.get("/a/echo").body, b"Welcome to SockJS!\n")
        self.assertEqual(client.post("/a/echo/0/s/xhr").body, b"o\n")
        self.assertEqual(client.get("/").status, 404)
        self.assertEqual(client.post("/0/s/xhr").status, 404)

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
        self.assertTrue(stream.body.endswith(b'c[1001,"Server shutting down"]\n'))
        self.assertTrue(stream.complete)

    def test_noTracebacks(self) -> None:
        """The site never renders tracebacks."""
        self.assertFalse(SockJSFactory(RecordingFactory(), reactor=MemoryReactorClock()).displayTracebacks)

    def test_optionsValidated(self) -> None:
        """Bad options fail at construction."""
        self.assertRaises(ValueError, SockJSFactory, RecordingFactory(), heartbeat_delay=0)


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
