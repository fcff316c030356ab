"""
Prometheus metrics: what each SockJS endpoint is doing, through C{prometheus_client}.

Without metrics, every session factory (and every L{SockJSSite}) holds L{NULL_OBSERVER},
whose methods do nothing: the server calls it at a few places per session, per received
batch and per flushed frame, never per message.  L{SockJSMetrics.watch} gives an endpoint
an L{EndpointObserver} that counts into the metric families; L{MetricsResource} serves
them (mount it anywhere; C{twistd sockjs --metrics-port N} serves it at C{/metrics}).

    from prometheus_client import CollectorRegistry
    from sockjs_twisted.metrics import MetricsResource, SockJSMetrics

    metrics = SockJSMetrics(CollectorRegistry())
    metrics.watch(chatEndpoint)        # a SockJSResource (or SockJSFactory.endpoint)
    metrics.watchSite(site)            # refused before an endpoint is reached
    root.putChild(b"metrics", MetricsResource(metrics.registry))

A hub's own counters are read at each scrape (L{SockJSMetrics.watchHub}); see
C{docs/monitoring.rst} for every metric.

C{prometheus_client} is imported only when L{SockJSMetrics} or L{MetricsResource} is
used: install the C{metrics} extra (C{pip install sockjs-twisted[metrics]}).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Optional

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = [
    "HUB_METRICS",
    "METRICS",
    "NULL_OBSERVER",
    "EndpointObserver",
    "MetricsResource",
    "NullObserver",
    "SockJSMetrics",
]

#: The transports a session can be opened by, as sinks name them.
TRANSPORTS = (
    "websocket",
    "websocket-raw",
    "xhr-streaming",
    "xhr-polling",
    "eventsource",
    "htmlfile",
    "jsonp-polling",
)

#: Each limit that refuses a request or a session: its C{limit} label and the status or
#: close code the client gets (the C{code} label).
LIMITS = (
    ("max_body_size", "413"),
    ("request_timeout", "408"),
    ("max_message_size", "1009"),
    ("max_sessions", "1013"),
    ("origin", "403"),
)

#: What only the HTTP layer refuses, before a request reaches an endpoint (counted
#: under C{prefix="*"} only), besides C{max_body_size} and C{request_timeout}.
SITE_LIMITS = (
    ("request_line_size", "414"),
    ("header_size", "431"),
    ("bad_request", "400"),
)
_LIMIT_CODES = dict(LIMITS + SITE_LIMITS)
_SITE_LIMITS_BY_CODE = {int(code): limit for limit, code in LIMITS + SITE_LIMITS}

#: The C{prefix} label of what the HTTP layer refuses before a request reaches an
#: endpoint (L{SockJSSite}: 400, 408, 413, 414, 431).
SITE_PREFIX = "*"

#: Histogram buckets, in seconds, for how long a session's receiving connection was away
#: (sockjs-node's default disconnect_delay is 5 s).
AWAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Every metric family of an endpoint: name (as exported, counters with C{_total}),
#: type, labels, meaning.  docs/monitoring.rst lists the same.
METRICS = (
    ("sockjs_sessions_open", "gauge", ("prefix", "transport"), "Sessions open now."),
    (
        "sockjs_sessions_opened_total",
        "counter",
        ("prefix", "transport"),
        "Sessions opened, by the transport of their first receiving connection.",
    ),
    (
        "sockjs_sessions_closed_total",
        "counter",
        ("prefix", "code"),
        "Sessions ended, by the close code they ended with ('none': no close frame).",
    ),
    ("sockjs_messages_received_total", "counter", ("prefix",), "Messages from clients."),
    ("sockjs_messages_sent_total", "counter", ("prefix",), "Messages to clients."),
    (
        "sockjs_received_bytes_total",
        "counter",
        ("prefix",),
        "UTF-8 bytes of the messages from clients (payloads, without framing).",
    ),
    (
        "sockjs_sent_bytes_total",
        "counter",
        ("prefix",),
        "UTF-8 bytes of the messages to clients, as quoted in their frames.",
    ),
    (
        "sockjs_unknown_session_sends_total",
        "counter",
        ("prefix",),
        "xhr_send / jsonp_send to a session this process does not have (404).",
    ),
    (
        "sockjs_refusals_total",
        "counter",
        ("prefix", "limit", "code"),
        "Requests or sessions refused by a limit.",
    ),
    (
        "sockjs_queue_overflows_total",
        "counter",
        ("prefix",),
        "Sessions closed with 1013 because their outgoing queue passed max_queue_size.",
    ),
    (
        "sockjs_producer_pauses_total",
        "counter",
        ("prefix",),
        "Times a session paused its protocol's producer (queue past high water).",
    ),
    (
        "sockjs_receiver_away_seconds",
        "histogram",
        ("prefix",),
        "How long an HTTP session was without a receiving connection before the next.",
    ),
)

#: The hub's metric families, read at each scrape from the hub's own counters
#: (L{SockJSMetrics.watchHub}): each attribute a hub has gives its series.  The last
#: item is the hub attribute read.
HUB_METRICS = (
    (
        "sockjs_hub_publishes_total",
        "counter",
        ("hub",),
        "Messages published to the hub in this process.",
        "published",
    ),
    (
        "sockjs_hub_deliveries_total",
        "counter",
        ("hub",),
        "Writes of hub messages to subscribers in this process.",
        "delivered",
    ),
    (
        "sockjs_hub_received_total",
        "counter",
        ("hub",),
        "Messages received from other processes through Redis.",
        "received",
    ),
    (
        "sockjs_hub_buffered_publishes",
        "gauge",
        ("hub",),
        "Publishes waiting for Redis now (kept while Redis is unreachable).",
        "buffered",
    ),
    (
        "sockjs_hub_dropped_publishes_total",
        "counter",
        ("hub",),
        "Publishes dropped because the buffer for Redis was full.",
        "dropped",
    ),
    (
        "sockjs_hub_missed_total",
        "counter",
        ("hub",),
        "Messages of other processes found missing (by their sequence numbers).",
        "missed",
    ),
    (
        "sockjs_hub_redis_connected",
        "gauge",
        ("hub",),
        "1 while the hub's Redis connections are up, else 0.",
        "connected",
    ),
)


def _help(name: str) -> str:
    for family in (*METRICS, *HUB_METRICS):
        if family[0] == name:
            return family[3]
    raise KeyError(name)


class NullObserver:
    """
    What an endpoint reports to when nobody watches it: nothing happens.  The server's
    hook calls are made on this object unless L{SockJSMetrics.watch} replaced it.
    """

    __slots__ = ()

    def sessionOpened(self, transport: str) -> None:
        """
        A session was opened by a receiving connection of C{transport}.
        """

    def sessionClosed(self, session: Any) -> None:
        """
        C{session} gave its protocol C{connectionLost} (once per session).
        """

    def received(self, messages: list[bytes]) -> None:
        """
        A batch of messages from a client reached its session.
        """

    def sent(self, quoted: list[str], count: Optional[int] = None) -> None:
        """
        A batch of C{count} quoted messages went to a client's receiving connection.
        Each string of C{quoted} holds one message or (when C{count} is more than its
        length) several joined by commas; C{count=None} means one message each.
        """

    def unknownSession(self) -> None:
        """
        An C{xhr_send} / C{jsonp_send} named a session that is not open here (404).
        """

    def refused(self, limit: str) -> None:
        """
        A limit (one of L{LIMITS}'s names) refused a request or a session.
        """

    def httpRefused(self, code: int) -> None:
        """
        The HTTP layer refused a request with C{code} (400, 408, 413, 414 or 431)
        before routing.
        """

    def websocketClosed(self, localCloseCode: Optional[int]) -> None:
        """
        A websocket closed; C{localCloseCode} is the code the server sent, if any.
        """

    def queueOverflow(self) -> None:
        """
        A session's outgoing queue passed C{max_queue_size}; it closes with 1013.
        """

    def producerPaused(self) -> None:
        """
        A session paused its protocol's producer.
        """

    def attached(self, session: Any) -> None:
        """
        A receiving connection was attached to C{session}.
        """

    def detached(self, session: Any) -> None:
        """
        C{session}'s receiving connection went away (HTTP sessions only).
        """


NULL_OBSERVER = NullObserver()


class EndpointObserver(NullObserver):
    """
    Counts what one endpoint reports, under the endpoint's C{prefix} label.

    Counts are plain integers, read by the L{SockJSMetrics} collector at each scrape
    (the reactor's thread does both): a hook costs an addition or two, no lock.
    """

    __slots__ = (
        "prefix",
        "opened",
        "closed",
        "messagesIn",
        "messagesOut",
        "bytesIn",
        "bytesOut",
        "unknown",
        "refusals",
        "overflows",
        "pauses",
        "_clock",
        "_away",
        "_awaySince",
    )

    def __init__(self, prefix: str, clock: Any, away: Any) -> None:
        """
        :param prefix: The C{prefix} label.
        :param clock: Provides C{seconds()}, for the away times.
        :param away: The C{sockjs_receiver_away_seconds} child for this prefix.
        """
        self.prefix = prefix
        self.opened = dict.fromkeys(TRANSPORTS, 0)
        self.closed: dict[str, int] = {}
        self.messagesIn = 0
        self.messagesOut = 0
        self.bytesIn = 0
        self.bytesOut = 0
        self.unknown = 0
        self.refusals = dict.fromkeys(
            dict(LIMITS + SITE_LIMITS) if prefix == SITE_PREFIX else dict(LIMITS), 0
        )
        self.overflows = 0
        self.pauses = 0
        self._clock = clock
        self._away = away
        self._awaySince: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def sessionOpened(self, transport: str) -> None:
        self.opened[transport] = self.opened.get(transport, 0) + 1

    def sessionClosed(self, session: Any) -> None:
        self._awaySince.pop(session, None)
        close = getattr(session, "_close", None)
        code = str(close[0]) if close is not None else "none"
        self.closed[code] = self.closed.get(code, 0) + 1

    def received(self, messages: list[bytes]) -> None:
        count = len(messages)
        self.messagesIn += count
        self.bytesIn += len(messages[0]) if count == 1 else sum(map(len, messages))

    def sent(self, quoted: list[str], count: Optional[int] = None) -> None:
        strings = len(quoted)
        if count is None:
            count = strings
        self.messagesOut += count
        text = quoted[0] if strings == 1 else "".join(quoted)
        # Less the commas that join queued messages inside one string.
        self.bytesOut += (
            len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        ) - (count - strings)

    def unknownSession(self) -> None:
        self.unknown += 1

    def refused(self, limit: str) -> None:
        self.refusals[limit] += 1

    def httpRefused(self, code: int) -> None:
        limit = _SITE_LIMITS_BY_CODE.get(code, "bad_request")
        self.refusals[limit] = self.refusals.get(limit, 0) + 1

    def websocketClosed(self, localCloseCode: Optional[int]) -> None:
        if localCloseCode == 1009:
            self.refusals["max_message_size"] += 1

    def queueOverflow(self) -> None:
        self.overflows += 1

    def producerPaused(self) -> None:
        self.pauses += 1

    def attached(self, session: Any) -> None:
        since = self._awaySince.pop(session, None)
        if since is not None:
            self._away.observe(self._clock.seconds() - since)

    def detached(self, session: Any) -> None:
        if session.readyState == 1:
            self._awaySince[session] = self._clock.seconds()


class _Collector:
    """
    Builds every family but the histogram from the observers' counts, and
    C{sockjs_sessions_open} from the endpoints' sessions, at each scrape.
    """

    def __init__(self) -> None:
        self.endpoints: list[tuple[EndpointObserver, Optional[weakref.ref[Any]]]] = []
        self.hubs: list[tuple[str, Any]] = []

    def describe(self) -> list[Metric]:
        return self._families()

    def _families(self) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: list[Metric] = []
        for name, kind, labels, helpText, *_ in (*METRICS, *HUB_METRICS):
            if kind == "counter":
                families.append(CounterMetricFamily(name, helpText, labels=labels))
            elif kind == "gauge":
                families.append(GaugeMetricFamily(name, helpText, labels=labels))
        return families

    def collect(self) -> list[Metric]:
        families = {family.name: family for family in self._families()}
        sums: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in families}

        def add(name: str, labels: tuple[str, ...], value: float) -> None:
            series = sums[name]
            series[labels] = series.get(labels, 0) + value

        for observer, ref in self.endpoints:
            p = observer.prefix
            for transport, count in observer.opened.items():
                add("sockjs_sessions_opened", (p, transport), count)
            for code, count in observer.closed.items():
                add("sockjs_sessions_closed", (p, code), count)
            add("sockjs_messages_received", (p,), observer.messagesIn)
            add("sockjs_messages_sent", (p,), observer.messagesOut)
            add("sockjs_received_bytes", (p,), observer.bytesIn)
            add("sockjs_sent_bytes", (p,), observer.bytesOut)
            add("sockjs_unknown_session_sends", (p,), observer.unknown)
            for limit, count in observer.refusals.items():
                add("sockjs_refusals", (p, limit, _LIMIT_CODES[limit]), count)
            add("sockjs_queue_overflows", (p,), observer.overflows)
            add("sockjs_producer_pauses", (p,), observer.pauses)
            registry = ref() if ref is not None else None
            if registry is not None:
                for transport in TRANSPORTS:
                    add("sockjs_sessions_open", (p, transport), 0)
                for session in registry.openSessions():
                    if session.readyState == 1:
                        name = getattr(session, "transportName", None)
                        if name is None:
                            name = session.protocol
                        add("sockjs_sessions_open", (p, name), 1)
        for hubName, hub in self.hubs:
            for hubMetric, kind, _, _, attribute in HUB_METRICS:
                reading = getattr(hub, attribute, None)
                if reading is not None:
                    familyName = hubMetric[: -len("_total")] if kind == "counter" else hubMetric
                    add(familyName, (hubName,), float(reading))
        for name, family in families.items():
            for labels, value in sums[name].items():
                family.add_metric(list(labels), value)  # type: ignore[attr-defined]
        return list(families.values())


class SockJSMetrics:
    """
    The metric families of SockJS endpoints and hubs, in one Prometheus registry.

    :ivar registry: The C{prometheus_client} registry they are in.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        """
        :param registry: Where the families go: a new C{CollectorRegistry} by default
            (pass C{prometheus_client.REGISTRY} to serve them beside your own).
        """
        from prometheus_client import CollectorRegistry, Histogram

        if registry is None:
            registry = CollectorRegistry()
        self.registry = registry
        self._collector = _Collector()
        registry.register(self._collector)  # type: ignore[arg-type]
        self._away = Histogram(
            "sockjs_receiver_away_seconds",
            _help("sockjs_receiver_away_seconds"),
            ["prefix"],
            buckets=AWAY_BUCKETS,
            registry=registry,
        )
        self._site: Optional[EndpointObserver] = None

    def watch(self, endpoint: Any) -> EndpointObserver:
        """
        Count what C{endpoint} (a L{sockjs_twisted.SockJSResource}) does, under the
        label C{prefix} = its C{prefix} option (C{"/"} for the root).
        """
        sessions = endpoint.sessions
        prefix = sessions.options.prefix or "/"
        observer = EndpointObserver(prefix, sessions.clock, self._away.labels(prefix))
        sessions.observer = observer
        self._collector.endpoints.append((observer, weakref.ref(sessions)))
        return observer

    def watchSite(self, site: Any) -> EndpointObserver:
        """
        Count the requests C{site} (a L{sockjs_twisted.SockJSSite}) refuses before they
        reach an endpoint (400, 408, 413, 414, 431), under C{prefix="*"}.
        """
        if self._site is None:
            self._site = EndpointObserver(SITE_PREFIX, site.reactor, None)
            self._collector.endpoints.append((self._site, None))
        site.observer = self._site
        return self._site

    def watchHub(self, hub: Any, name: str = "default") -> None:
        """
        Export C{hub}'s counters under the label C{hub=name}, read at each scrape: no
        hook in the hub.  Each attribute of L{HUB_METRICS} the hub has (C{published},
        C{delivered}; a Redis hub's C{received}, C{buffered}, C{dropped}, C{missed},
        C{connected}) gives its series.
        """
        self._collector.hubs.append((name, hub))


class MetricsResource(Resource):
    """
    Serves a Prometheus registry in the text exposition format (or OpenMetrics, when
    the scraper asks for it).  A leaf: mount it wherever you like.
    """

    isLeaf = True

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        """
        :param registry: The registry to serve; C{prometheus_client.REGISTRY} by default.
        """
        super().__init__()
        if registry is None:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        self.registry = registry

    def render_GET(self, request: IRequest) -> bytes:
        from prometheus_client.exposition import choose_encoder

        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"Content-Type", contentType.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return encoder(self.registry)  # type: ignore[no-any-return]
