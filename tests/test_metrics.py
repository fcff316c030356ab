"""
Prometheus metrics (sockjs_twisted.metrics): scraped over HTTP from a real site while
sessions run over every transport, each series checked for its exact value; the null
observer; the hub observer; C{twistd sockjs --metrics-port}; the Grafana dashboard.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import Request, urlopen

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from twisted.web.resource import Resource
from zope.interface import implementer

from sockjs_twisted import SockJSResource
from sockjs_twisted._factory import SockJSSite
from sockjs_twisted._registry import SessionRegistry
from sockjs_twisted._tap import _metricsSite, workerMetricsEndpoint
from sockjs_twisted.metrics import (
    HUB_METRICS,
    LIMITS,
    METRICS,
    NULL_OBSERVER,
    TRANSPORTS,
    MetricsResource,
    SockJSMetrics,
)
from sockjs_twisted.testserver import EchoFactory

from ._harness import HTTPClient, sockjsClient
from ._processes import sockjsCommand, stopProcess

REPOSITORY = Path(__file__).resolve().parent.parent
DASHBOARD = REPOSITORY / "docs" / "grafana-dashboard.json"
MONITORING = REPOSITORY / "docs" / "monitoring.rst"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """
    Every sample of a scrape: (name, labels) to value.
    """
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def scrapeRegistry(registry: CollectorRegistry, accept: str | None = None) -> Samples:
    """
    GET C{registry} through a L{MetricsResource} on a real site.
    """
    return parse(getMetrics(registry, accept).text)


def getMetrics(registry: CollectorRegistry, accept: str | None = None) -> Any:
    """
    The response to a GET of a L{MetricsResource} serving C{registry}.
    """
    clock = MemoryReactorClock()
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    headers = {"Accept": accept} if accept else {}
    return HTTPClient(root, clock).get("/metrics", headers=headers)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


@implementer(IPushProducer)
class _Producer:
    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class Flood(Protocol):
    """
    Registers a streaming producer; message C{n} gets C{n} bytes back.
    """

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.registerProducer(_Producer(), True)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"x" * int(data))


class ScrapeTests(SynchronousTestCase):
    """
    Three endpoints on one site with the metrics beside them: /echo (every transport),
    /strict (the limits) and /flood (backpressure).
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        root = Resource()
        self.echo = SockJSResource(EchoFactory(), reactor=self.clock, prefix="/echo")
        self.strict = SockJSResource(
            EchoFactory(),
            reactor=self.clock,
            prefix="/strict",
            allowed_origins=["http://good.example"],
            max_sessions=1,
            max_message_size=100,
            max_body_size=100,
        )
        self.flood = SockJSResource(
            Factory.forProtocol(Flood),
            reactor=self.clock,
            prefix="/flood",
            max_queue_size=200_000,
            # The echo of a whole body must fit in the queue.
            max_body_size=100_000,
        )
        for name, endpoint in [
            (b"echo", self.echo),
            (b"strict", self.strict),
            (b"flood", self.flood),
        ]:
            root.putChild(name, endpoint)
        self.metrics = SockJSMetrics(CollectorRegistry())
        for endpoint in (self.echo, self.strict, self.flood):
            self.metrics.watch(endpoint)
        root.putChild(b"metrics", MetricsResource(self.metrics.registry))
        site = SockJSSite(root, reactor=self.clock, max_body_size=1000)
        self.metrics.watchSite(site)
        self.client = HTTPClient(site=site, clock=self.clock)

    def scrape(self) -> Samples:
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue((r.header("content-type") or "").startswith("text/plain"))
        return parse(r.text)

    def xhrSend(self, prefix: str, session: str, messages: list[str]) -> int:
        return self.client.post(
            f"/{prefix}/0/{session}/xhr_send", json.dumps(messages).encode("utf-8")
        ).status

    def test_beforeAnything(self) -> None:
        """Before any request, every per-endpoint series is exported, at zero."""
        samples = self.scrape()
        for prefix in ("/echo", "/strict", "/flood"):
            for transport in TRANSPORTS:
                self.assertEqual(
                    value(samples, "sockjs_sessions_open", prefix=prefix, transport=transport), 0
                )
                self.assertEqual(
                    value(
                        samples, "sockjs_sessions_opened_total", prefix=prefix, transport=transport
                    ),
                    0,
                )
            for limit, code in LIMITS:
                self.assertEqual(
                    value(samples, "sockjs_refusals_total", prefix=prefix, limit=limit, code=code),
                    0,
                )
            for name in (
                "sockjs_messages_received_total",
                "sockjs_messages_sent_total",
                "sockjs_received_bytes_total",
                "sockjs_sent_bytes_total",
                "sockjs_unknown_session_sends_total",
                "sockjs_queue_overflows_total",
                "sockjs_producer_pauses_total",
                "sockjs_receiver_away_seconds_count",
            ):
                self.assertEqual(value(samples, name, prefix=prefix), 0, name)

    def test_everyTransport(self) -> None:
        """Sessions over all seven transports: opened, open, messages and bytes both ways, away times, 404 sends, closes."""
        client = self.client
        # websocket (framed): two messages, then the client closes.
        ws = client.websocket("/echo/0/w/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.sendText('["a","bc"]')
        self.assertEqual(ws.frames(), [["a", "bc"]])
        ws.sendClose()
        # raw websocket: one message, stays open.
        raw = client.websocket("/echo/websocket")
        raw.sendText("xyz")
        self.assertEqual(raw.receive(), ["xyz"])
        # xhr_streaming.
        stream = client.post("/echo/0/s/xhr_streaming")
        self.assertEqual(self.xhrSend("echo", "s", ["hi"]), 204)
        client.pumpAll()
        self.assertTrue(stream.read().endswith(b'a["hi"]\n'))
        # xhr polling: the receiver is away 0.5 s between polls.
        self.assertEqual(client.post("/echo/0/p/xhr").body, b"o\n")
        self.assertEqual(self.xhrSend("echo", "p", ["p"]), 204)
        client.advance(0.5)
        self.assertEqual(client.post("/echo/0/p/xhr").body, b'a["p"]\n')
        # eventsource and htmlfile.
        events = client.get("/echo/0/e/eventsource")
        self.assertEqual(self.xhrSend("echo", "e", ["e"]), 204)
        client.pumpAll()
        self.assertIn(b'a["e"]', events.read())
        html = client.get("/echo/0/h/htmlfile?c=cb")
        self.assertEqual(self.xhrSend("echo", "h", ["h"]), 204)
        client.pumpAll()
        self.assertIn(b'a[\\"h\\"]', html.read())
        # jsonp: the receiver is away 1 s between polls.
        self.assertEqual(client.get("/echo/0/j/jsonp?c=cb").status, 200)
        r = client.post(
            "/echo/0/j/jsonp_send",
            b"d=" + quote('["j"]').encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        self.assertEqual((r.status, r.body), (200, b"ok"))
        client.advance(1.0)
        self.assertIn(b'a[\\"j\\"]', client.get("/echo/0/j/jsonp?c=cb").body)
        # Two sends to a session that does not exist.
        self.assertEqual(self.xhrSend("echo", "nope", ["x"]), 404)
        self.assertEqual(client.post("/echo/0/nope/jsonp_send", b'["x"]').status, 404)

        samples = self.scrape()
        expectedOpen = dict.fromkeys(TRANSPORTS, 1)
        expectedOpen["websocket"] = 0
        for transport in TRANSPORTS:
            self.assertEqual(
                value(
                    samples, "sockjs_sessions_opened_total", prefix="/echo", transport=transport
                ),
                1,
                transport,
            )
            self.assertEqual(
                value(samples, "sockjs_sessions_open", prefix="/echo", transport=transport),
                expectedOpen[transport],
                transport,
            )
        # The framed websocket ended without a close frame of the server's.
        self.assertEqual(
            value(samples, "sockjs_sessions_closed_total", prefix="/echo", code="none"), 1
        )
        self.assertEqual(value(samples, "sockjs_messages_received_total", prefix="/echo"), 8)
        self.assertEqual(value(samples, "sockjs_messages_sent_total", prefix="/echo"), 8)
        # In: a bc xyz hi p e h j.  Out, as quoted: "a" "bc" xyz(raw) "hi" "p" "e" "h" "j".
        self.assertEqual(value(samples, "sockjs_received_bytes_total", prefix="/echo"), 12)
        self.assertEqual(value(samples, "sockjs_sent_bytes_total", prefix="/echo"), 26)
        self.assertEqual(value(samples, "sockjs_unknown_session_sends_total", prefix="/echo"), 2)
        self.assertEqual(value(samples, "sockjs_receiver_away_seconds_count", prefix="/echo"), 2)
        self.assertEqual(value(samples, "sockjs_receiver_away_seconds_sum", prefix="/echo"), 1.5)
        self.assertEqual(
            value(samples, "sockjs_receiver_away_seconds_bucket", prefix="/echo", le="0.5"), 1
        )
        self.assertEqual(
            value(samples, "sockjs_receiver_away_seconds_bucket", prefix="/echo", le="1.0"), 2
        )
        # Nothing was counted under the other endpoints.
        self.assertEqual(value(samples, "sockjs_messages_received_total", prefix="/strict"), 0)

    def test_nonAsciiBytes(self) -> None:
        """Bytes in and out are UTF-8 bytes, not characters."""
        raw = self.client.websocket("/echo/websocket")
        raw.sendText("\u2603")
        self.assertEqual(raw.receive(), ["\u2603"])
        samples = self.scrape()
        self.assertEqual(value(samples, "sockjs_received_bytes_total", prefix="/echo"), 3)
        self.assertEqual(value(samples, "sockjs_sent_bytes_total", prefix="/echo"), 3)

    def test_limits(self) -> None:
        """Each limit's refusals are counted under its own label: 403, 1009, 413, 1013, 408."""
        client = self.client
        evil = {"Origin": "http://evil.example"}
        self.assertEqual(client.post("/strict/0/o/xhr", headers=evil).status, 403)
        self.assertEqual(
            client.websocket("/strict/0/o/websocket", headers=evil).response.status, 403
        )
        ws = client.websocket("/strict/0/w/websocket")
        self.assertEqual(ws.frames(), ["o"])
        ws.sendText('["' + "x" * 200 + '"]')
        self.assertEqual(ws.closeCode, 1009)
        ws.sendClose(1009)
        self.assertEqual(client.post("/strict/0/a/xhr").body, b"o\n")
        self.assertEqual(
            client.post("/strict/0/a/xhr_send", b'["' + b"x" * 200 + b'"]').status, 413
        )
        self.assertEqual(client.post("/strict/0/b/xhr").body, b'c[1013,"Too many sessions"]\n')
        self.assertEqual(client.post("/strict/0/a/xhr_send", b"x" * 2000).status, 413)
        samples = self.scrape()

        def refused(prefix: str, limit: str, code: str) -> float:
            return value(samples, "sockjs_refusals_total", prefix=prefix, limit=limit, code=code)

        self.assertEqual(refused("/strict", "origin", "403"), 2)
        self.assertEqual(refused("/strict", "max_message_size", "1009"), 1)
        self.assertEqual(refused("/strict", "max_body_size", "413"), 1)
        self.assertEqual(refused("/strict", "max_sessions", "1013"), 1)
        self.assertEqual(refused("*", "max_body_size", "413"), 1)
        self.assertEqual(refused("*", "request_timeout", "408"), 0)
        self.assertEqual(
            value(
                samples, "sockjs_sessions_opened_total", prefix="/strict", transport="xhr-polling"
            ),
            1,
        )

        client.connect().send(b"GET /echo HTTP/1.1\r\n\r\n")
        client.connect().send(b"GET /" + b"x" * 17000 + b" HTTP/1.1\r\n")
        client.connect().send(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 17000 + b"\r\n")
        samples = self.scrape()
        self.assertEqual(refused("*", "bad_request", "400"), 1)
        self.assertEqual(refused("*", "request_line_size", "414"), 1)
        self.assertEqual(refused("*", "header_size", "431"), 1)
        self.assertNotIn(
            (
                "sockjs_refusals_total",
                frozenset({("prefix", "/strict"), ("limit", "bad_request"), ("code", "400")}),
            ),
            samples,
        )

        slow = client.connect()
        slow.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        client.advance(30)
        self.assertEqual(slow._responses[0].status, 408)
        self.assertEqual(refused("*", "request_timeout", "408"), 0)
        self.assertEqual(
            value(
                self.scrape(),
                "sockjs_refusals_total",
                prefix="*",
                limit="request_timeout",
                code="408",
            ),
            1,
        )

    def test_backpressure(self) -> None:
        """A producer pause past high water, then a queue overflow closing the session with 1013."""
        client = self.client
        self.assertEqual(client.post("/flood/0/f/xhr").body, b"o\n")
        self.assertEqual(self.xhrSend("flood", "f", ["70000"]), 204)
        samples = self.scrape()
        self.assertEqual(value(samples, "sockjs_producer_pauses_total", prefix="/flood"), 1)
        self.assertEqual(value(samples, "sockjs_queue_overflows_total", prefix="/flood"), 0)
        self.assertEqual(
            value(samples, "sockjs_sessions_open", prefix="/flood", transport="xhr-polling"), 1
        )
        self.assertEqual(self.xhrSend("flood", "f", ["200000"]), 204)
        client.advance(0)
        samples = self.scrape()
        self.assertEqual(value(samples, "sockjs_producer_pauses_total", prefix="/flood"), 1)
        self.assertEqual(value(samples, "sockjs_queue_overflows_total", prefix="/flood"), 1)
        self.assertEqual(
            value(samples, "sockjs_sessions_closed_total", prefix="/flood", code="1013"), 1
        )
        self.assertEqual(
            value(samples, "sockjs_sessions_open", prefix="/flood", transport="xhr-polling"), 0
        )
        self.assertEqual(value(samples, "sockjs_messages_sent_total", prefix="/flood"), 0)

    def test_timeoutClosesWithoutCode(self) -> None:
        """A session that times out is closed under code 'none' and no longer open."""
        self.assertEqual(self.client.post("/echo/0/t/xhr").body, b"o\n")
        self.client.advance(5)
        samples = self.scrape()
        self.assertEqual(
            value(samples, "sockjs_sessions_closed_total", prefix="/echo", code="none"), 1
        )
        self.assertEqual(
            value(samples, "sockjs_sessions_open", prefix="/echo", transport="xhr-polling"), 0
        )
        self.assertEqual(value(samples, "sockjs_receiver_away_seconds_count", prefix="/echo"), 0)

    def test_serverClose(self) -> None:
        """A session the server closes counts under its close code."""
        self.assertEqual(self.client.post("/echo/0/c/xhr").body, b"o\n")
        session = self.echo.sessions.getSession("c")
        assert session is not None
        session.close(4000, "bye")
        self.assertEqual(self.client.post("/echo/0/c/xhr").body, b'c[4000,"bye"]\n')
        samples = self.scrape()
        self.assertEqual(
            value(samples, "sockjs_sessions_closed_total", prefix="/echo", code="4000"), 1
        )


class ObserverTests(SynchronousTestCase):
    def test_nullByDefault(self) -> None:
        """Without metrics, an endpoint and a site report to the shared null observer."""
        endpoint = SockJSResource(EchoFactory(), reactor=MemoryReactorClock())
        self.assertIs(endpoint.sessions.observer, NULL_OBSERVER)
        self.assertIs(SockJSSite(Resource(), reactor=MemoryReactorClock()).observer, NULL_OBSERVER)

    def test_joinedMessagesCounted(self) -> None:
        """Messages a session joined in its queue are counted one by one, their commas not as bytes."""
        from ._fakes import RecordingSink, info

        metrics = SockJSMetrics()
        clock = MemoryReactorClock()
        endpoint = SockJSResource(EchoFactory(), reactor=clock, prefix="/echo")
        metrics.watch(endpoint)
        sink = RecordingSink()
        session = endpoint.sessions.openSession("s", sink, info())
        assert session is not None
        sink.pause()
        for i in range(1000):
            session.transport.write(b"%03d" % (i % 1000))
        sink.resume()
        self.assertLess(len(sink.messages[-1]), 1000)
        samples = scrapeRegistry(metrics.registry)
        self.assertEqual(value(samples, "sockjs_messages_sent_total", prefix="/echo"), 1000)
        self.assertEqual(value(samples, "sockjs_sent_bytes_total", prefix="/echo"), 5000)

    def test_rootPrefixLabel(self) -> None:
        """An endpoint at the root is labelled prefix='/'."""
        metrics = SockJSMetrics()
        endpoint = SockJSResource(EchoFactory(), reactor=MemoryReactorClock())
        metrics.watch(endpoint)
        samples = scrapeRegistry(metrics.registry)
        self.assertEqual(value(samples, "sockjs_messages_received_total", prefix="/"), 0)

    def test_hubCounters(self) -> None:
        """A watched hub's counters are read at each scrape, those it has and no others."""
        metrics = SockJSMetrics()
        redisHub = _HubStandIn(published=3, delivered=5, received=2, buffered=4, dropped=1)
        redisHub.missed = 0
        redisHub.connected = True
        metrics.watchHub(redisHub, "redis")
        metrics.watchHub(_LocalHubStandIn(), "local")
        samples = scrapeRegistry(metrics.registry)
        self.assertEqual(value(samples, "sockjs_hub_publishes_total", hub="redis"), 3)
        self.assertEqual(value(samples, "sockjs_hub_deliveries_total", hub="redis"), 5)
        self.assertEqual(value(samples, "sockjs_hub_received_total", hub="redis"), 2)
        self.assertEqual(value(samples, "sockjs_hub_buffered_publishes", hub="redis"), 4)
        self.assertEqual(value(samples, "sockjs_hub_dropped_publishes_total", hub="redis"), 1)
        self.assertEqual(value(samples, "sockjs_hub_missed_total", hub="redis"), 0)
        self.assertEqual(value(samples, "sockjs_hub_redis_connected", hub="redis"), 1)
        redisHub.connected = False
        redisHub.published = 4
        samples = scrapeRegistry(metrics.registry)
        self.assertEqual(value(samples, "sockjs_hub_redis_connected", hub="redis"), 0)
        self.assertEqual(value(samples, "sockjs_hub_publishes_total", hub="redis"), 4)
        self.assertEqual(value(samples, "sockjs_hub_publishes_total", hub="local"), 7)
        self.assertNotIn(("sockjs_hub_redis_connected", frozenset({("hub", "local")})), samples)

    def test_realLocalHub(self) -> None:
        """The in-process hub of sockjs_twisted.hub, once it has landed, is read as is."""
        try:
            from sockjs_twisted.hub import LocalHub  # type: ignore[import-not-found]
        except ImportError:
            raise SkipTest("sockjs_twisted.hub (the scale-out work) has not landed on this branch")
        hub = LocalHub()
        metrics = SockJSMetrics()
        metrics.watchHub(hub, "local")
        hub.publish("c", b"nobody listens")
        samples = scrapeRegistry(metrics.registry)
        self.assertEqual(value(samples, "sockjs_hub_publishes_total", hub="local"), 1)
        self.assertEqual(value(samples, "sockjs_hub_deliveries_total", hub="local"), 0)

    def test_openMetrics(self) -> None:
        """A scraper asking for OpenMetrics gets it."""
        response = getMetrics(
            SockJSMetrics().registry, "application/openmetrics-text; version=1.0.0"
        )
        self.assertTrue(response.body.endswith(b"# EOF\n"))
        self.assertIn("openmetrics", response.header("content-type"))

    def test_registryHasNoObserverCostWithoutMetrics(self) -> None:
        """The null observer's hooks take the same arguments as the counting one's."""
        registry = SessionRegistry(EchoFactory(), SockJSResource(EchoFactory()).options)
        self.assertIs(registry.observer, NULL_OBSERVER)
        NULL_OBSERVER.received([b"x"])
        NULL_OBSERVER.sent(['"x"'])


class _LocalHubStandIn:
    """
    The counters an in-process hub has (sockjs_twisted.hub.LocalHub's).
    """

    def __init__(self) -> None:
        self.published = 7
        self.delivered = 9


class _HubStandIn:
    """
    The counters a Redis hub has (sockjs_twisted.hub.RedisHub's), set by the test.
    """

    def __init__(
        self, published: int, delivered: int, received: int, buffered: int, dropped: int
    ) -> None:
        self.published = published
        self.delivered = delivered
        self.received = received
        self.buffered = buffered
        self.dropped = dropped
        self.missed = 0
        self.connected = False


class DocumentationTests(SynchronousTestCase):
    def exported(self) -> set[str]:
        names: set[str] = set()
        for name, kind, *_ in (*METRICS, *HUB_METRICS):
            if kind == "histogram":
                names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
        return names

    def test_everyFamilyExported(self) -> None:
        """The families METRICS and HUB_METRICS list are exactly the sockjs_ ones exported."""
        metrics = SockJSMetrics()
        hub = _HubStandIn(published=0, delivered=0, received=0, buffered=0, dropped=0)
        metrics.watchHub(hub)
        client, endpoint = sockjsClient(EchoFactory())
        metrics.watch(endpoint)
        client.post("/echo/0/s/xhr")
        endpoint.sessions.closeAll(1001, "Server shutting down")
        samples = scrapeRegistry(metrics.registry)
        seen = {name for name, _ in samples if not name.endswith("_created")}
        self.assertEqual(seen, self.exported())

    def test_monitoringPageListsEveryMetric(self) -> None:
        """docs/monitoring.rst names every exported family."""
        text = MONITORING.read_text()
        for name, *_ in (*METRICS, *HUB_METRICS):
            self.assertIn(f"``{name}``", text)

    def servedNames(self) -> set[str]:
        """
        Every series name the /metrics of C{twistd sockjs --metrics-port} can export:
        from its families (those without samples yet too) and its samples.
        """
        clock = MemoryReactorClock()
        endpoint = SockJSResource(EchoFactory(), reactor=clock, prefix="/echo")
        site = _metricsSite([endpoint], SockJSSite(endpoint, reactor=clock), clock)
        text = HTTPClient(site=site, clock=clock).get("/metrics").text  # type: ignore[arg-type]
        names: set[str] = set()
        for family in text_string_to_metric_families(text):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        return names

    def test_dashboardQueriesExportedSeries(self) -> None:
        """Every series the Grafana dashboard queries is one the server's /metrics exports."""
        dashboard = json.loads(DASHBOARD.read_text())
        exprs = [
            target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
        ]
        exprs += [
            variable["query"]["query"]
            for variable in dashboard["templating"]["list"]
            if variable["type"] == "query"
        ]
        self.assertGreater(len(exprs), 10)
        served = self.servedNames()
        used = set()
        for expr in exprs:
            # Every metric name in these queries is written with a selector: name{...}
            # (label_values(name, label) in a variable query).
            names = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr)
            names += re.findall(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),", expr)
            self.assertTrue(names, expr)
            for name in names:
                self.assertIn(name, served, expr)
                used.add(name)
        # Each of the server's families is on the dashboard.
        for name, kind, *_ in (*METRICS, *HUB_METRICS):
            if kind == "histogram":
                self.assertTrue(used & {name + "_bucket", name + "_sum", name + "_count"}, name)
            else:
                self.assertIn(name, used)

    def test_dashboardCatchesUnknownSeries(self) -> None:
        """The dashboard check tells a misspelt series from an exported one."""
        served = self.servedNames()
        self.assertIn("sockjs_sessions_open", served)
        self.assertIn("process_resident_memory_bytes", served)
        self.assertNotIn("sockjs_session_open", served)


class TwistdTests(SynchronousTestCase):
    def test_workerMetricsEndpoint(self) -> None:
        """With --workers, worker i serves /metrics on the port plus i (or path.i)."""
        self.assertEqual(workerMetricsEndpoint("tcp:9100", 0), "tcp:9100")
        self.assertEqual(
            workerMetricsEndpoint("tcp:9100:interface=127.0.0.1", 2),
            "tcp:9102:interface=127.0.0.1",
        )
        self.assertEqual(
            workerMetricsEndpoint(r"tcp:interface=\:\:1:port=9100", 3),
            r"tcp:interface=\:\:1:port=9103",
        )
        self.assertEqual(workerMetricsEndpoint("unix:/run/m.sock", 1), "unix:/run/m.sock.1")
        self.assertRaises(ValueError, workerMetricsEndpoint, "tcp:interface=127.0.0.1", 1)

    def test_metricsPort(self) -> None:
        """twistd sockjs --metrics-port serves /metrics counting a real xhr session."""
        logDir = Path(self.mktemp())
        logDir.mkdir(parents=True)
        logPath = logDir / "twistd.log"
        with logPath.open("wb") as log:
            process = subprocess.Popen(
                sockjsCommand(
                    "tcp:0:interface=127.0.0.1", "--metrics-port", "tcp:0:interface=127.0.0.1"
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPOSITORY),
            )

        self.addCleanup(stopProcess, process, timeout=10)
        deadline = time.monotonic() + 30
        ports: dict[str, int] = {}
        while len(ports) < 2:
            self.assertLess(time.monotonic(), deadline, logPath.read_text())
            self.assertIsNone(process.poll(), logPath.read_text())
            for kind, port in re.findall(r"(\w+) starting on (\d+)", logPath.read_text()):
                ports[kind] = int(port)
            time.sleep(0.05)
        base = f"http://127.0.0.1:{ports['SockJSSite']}"
        metricsURL = f"http://127.0.0.1:{ports['_MetricsSite']}/metrics"

        def post(path: str, body: bytes = b"") -> bytes:
            with urlopen(Request(base + path, data=body, method="POST"), timeout=10) as r:
                return r.read()  # type: ignore[no-any-return]

        self.assertEqual(post("/echo/0/s/xhr"), b"o\n")
        post("/echo/0/s/xhr_send", b'["hello"]')
        self.assertEqual(post("/echo/0/s/xhr"), b'a["hello"]\n')
        with urlopen(metricsURL, timeout=10) as r:
            samples = parse(r.read().decode("utf-8"))
        self.assertEqual(
            value(
                samples, "sockjs_sessions_opened_total", prefix="/echo", transport="xhr-polling"
            ),
            1,
        )
        self.assertEqual(
            value(samples, "sockjs_sessions_open", prefix="/echo", transport="xhr-polling"), 1
        )
        self.assertEqual(value(samples, "sockjs_messages_received_total", prefix="/echo"), 1)
        self.assertEqual(value(samples, "sockjs_sent_bytes_total", prefix="/echo"), 7)
        self.assertEqual(value(samples, "sockjs_messages_received_total", prefix="/multiplex"), 0)
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 0)
