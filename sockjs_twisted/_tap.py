"""
C{twistd sockjs}: serve the standard test services, or your own protocol factory, over
SockJS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.internet.defer import gatherResults
from twisted.internet.interfaces import IProtocolFactory
from twisted.python import usage
from twisted.python.reflect import namedAny
from twisted.web.resource import Resource
from twisted.web.server import Site

from ._factory import SockJSSite, mount
from ._options import DEFAULT_SOCKJS_URL
from ._resource import SockJSResource
from .testserver import testServices

__all__ = ["Options", "makeService"]


def _endpointDescription(value: str) -> str:
    """
    A bare port number means TCP on every interface.
    """
    return "tcp:" + value if value.isdigit() else value


def _positiveFloat(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


def _positiveInt(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


class Options(usage.Options):
    """
    The options of C{twistd sockjs}.
    """

    synopsis = "[options]"
    longdesc = (
        "Serve SockJS. Without --factory, serves the standard test services "
        "(/echo, /close, /disabled_websocket_echo, /cookie_needed_echo, /ticker, "
        "/amplify, /broadcast, /multiplex) that the SockJS protocol suite and sockjs-client's "
        "tests use."
    )

    optParameters: list[Any] = [
        [
            "port",
            "p",
            None,
            "Endpoint description to listen on: a port number (8081), or "
            "tcp:8081:interface=127.0.0.1, ssl:8443:privateKey=key.pem:certKey=cert.pem, "
            "unix:/path/sock. Default: tcp:8081.",
        ],
        [
            "factory",
            None,
            None,
            "Serve this protocol factory (dotted name of a factory, or of a callable "
            "returning one) instead of the test services.",
        ],
        ["prefix", None, "", "With --factory: the path to serve it under, e.g. /chat."],
        [
            "sockjs-url",
            None,
            DEFAULT_SOCKJS_URL,
            "sockjs-client script the iframe page loads (use your page's).",
        ],
        [
            "response-limit",
            None,
            128 * 1024,
            "Bytes a streaming response carries before it is closed.",
            _positiveInt,
        ],
        [
            "heartbeat-delay",
            None,
            25.0,
            "Seconds between heartbeat frames.",
            _positiveFloat,
        ],
        [
            "disconnect-delay",
            None,
            5.0,
            "Seconds a session lives without a receiving connection.",
            _positiveFloat,
        ],
        [
            "max-message-size",
            None,
            1024 * 1024,
            "Largest message, in bytes, a client may send.",
            _positiveInt,
        ],
        [
            "max-body-size",
            None,
            1024 * 1024,
            "Largest xhr_send / jsonp_send body, in bytes.",
            _positiveInt,
        ],
        [
            "max-queue-size",
            None,
            4 * 1024 * 1024,
            "Most memory, in bytes, a session's outgoing queue may hold for a client that "
            "does not read.",
            _positiveInt,
        ],
        [
            "metrics-port",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint description (a port "
            "number, or e.g. tcp:9100:interface=127.0.0.1). Needs prometheus_client "
            "(the 'metrics' extra).",
        ],
        [
            "max-sessions",
            None,
            None,
            "Most sessions open at once per endpoint (default: no limit).",
            _positiveInt,
        ],
    ]

    optFlags: list[Any] = [
        ["no-websocket", None, "Do not offer the websocket transports."],
        ["jsessionid", None, "Set a JSESSIONID cookie, for sticky load balancers."],
        ["disable-cors", None, "Send no CORS headers."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["allowed_origins"] = []

    def opt_listen(self, description: str) -> None:
        """
        Listen on this endpoint description too (may repeat).
        """
        self["listen"].append(_endpointDescription(description))

    def opt_allowed_origin(self, origin: str) -> None:
        """
        Allow only this origin (may repeat; wildcards such as https://*.example.com).
        Default: every origin.
        """
        self["allowed_origins"].append(origin)

    def postOptions(self) -> None:
        endpoints = list(self["listen"])
        if self["port"] is not None or not endpoints:
            endpoints.insert(0, _endpointDescription(self["port"] or "8081"))
        self["endpoints"] = endpoints
        if self["prefix"] and not self["factory"]:
            raise usage.UsageError("--prefix goes with --factory")
        if self["factory"]:
            self["userFactory"] = _loadFactory(self["factory"])
        if self["metrics-port"] is not None:
            try:
                import prometheus_client  # noqa: F401
            except ImportError:
                raise usage.UsageError(
                    "--metrics-port needs prometheus_client: pip install 'sockjs-twisted[metrics]'"
                ) from None
            self["metrics-port"] = _endpointDescription(self["metrics-port"])

    def serverOptions(self) -> dict[str, Any]:
        """
        The options for L{SockJSResource}.
        """
        return {
            "sockjs_url": self["sockjs-url"],
            "response_limit": self["response-limit"],
            "heartbeat_delay": self["heartbeat-delay"],
            "disconnect_delay": self["disconnect-delay"],
            "max_message_size": self["max-message-size"],
            "max_body_size": self["max-body-size"],
            "max_sessions": self["max-sessions"],
            "max_queue_size": self["max-queue-size"],
            "websocket": not self["no-websocket"],
            "jsessionid": bool(self["jsessionid"]),
            "disable_cors": bool(self["disable-cors"]),
            "allowed_origins": self["allowed_origins"] or None,
        }


def _loadFactory(name: str) -> IProtocolFactory:
    try:
        obj = namedAny(name)
    except Exception as e:
        raise usage.UsageError(f"--factory {name}: cannot import it ({e})") from None
    if not IProtocolFactory.providedBy(obj) and callable(obj):
        obj = obj()
    if not IProtocolFactory.providedBy(obj):
        raise usage.UsageError(f"--factory {name}: not a protocol factory: {obj!r}")
    return obj  # type: ignore[no-any-return]


class _SockJSService(MultiService):
    """
    The listening ports, and the endpoints to close when stopping.
    """

    def __init__(self, endpoints: list[SockJSResource]) -> None:
        super().__init__()
        self.endpoints = endpoints

    def startService(self) -> None:
        for endpoint in self.endpoints:
            endpoint.start()
        super().startService()

    def stopService(self) -> Any:
        stopping = [endpoint.stop() for endpoint in self.endpoints]
        stopping.append(super().stopService())
        return gatherResults(stopping)


def makeService(config: Options, reactor: Optional[Any] = None) -> IService:
    """
    Build the service C{twistd sockjs} runs.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    options = config.serverOptions()
    root: Resource
    if config["factory"]:
        prefix = config["prefix"].rstrip("/")
        endpoint = SockJSResource(config["userFactory"], reactor=reactor, prefix=prefix, **options)
        if prefix:
            root = Resource()
            mount(root, prefix, endpoint)
        else:
            root = endpoint
        endpoints = [endpoint]
    else:
        root = testServices(reactor, **options)
        endpoints = list(root.children.values())  # type: ignore[arg-type]
    site = SockJSSite(root, reactor=reactor, max_body_size=options["max_body_size"])
    service = _SockJSService(endpoints)
    for description in config["endpoints"]:
        strports.service(description, site, reactor=reactor).setServiceParent(service)
    if config["metrics-port"] is not None:
        metricsSite = _metricsSite(endpoints, site, reactor)
        strports.service(config["metrics-port"], metricsSite, reactor=reactor).setServiceParent(
            service
        )
    return service


def workerMetricsEndpoint(description: str, index: int) -> str:
    """
    The C{--metrics-port} of worker C{index} (from 0) of C{--workers}, given the
    C{--metrics-port} of the command: each worker serves its own C{/metrics}, on the
    port number plus C{index} (TCP, SSL), or at the UNIX socket path plus C{.index}.

    :param description: An endpoint description, as L{_endpointDescription} leaves it.
    :raise ValueError: The description names no port or path to derive from.
    """
    kind, _, rest = description.partition(":")
    # Fields are split on colons, except escaped ones (an IPv6 interface=\:\:1).
    fields = re.split(r"(?<!\\):", rest)
    for i, field in enumerate(fields):
        name, equals, value = field.rpartition("=")
        if kind in ("tcp", "tcp6", "ssl"):
            if (not equals and field.isdigit()) or (name == "port" and value.isdigit()):
                fields[i] = (name + equals if equals else "") + str(int(value) + index)
                return f"{kind}:{':'.join(fields)}"
        elif kind == "unix" and (not equals or name == "address"):
            fields[i] = field + f".{index}"
            return f"{kind}:{':'.join(fields)}"
    raise ValueError(f"no port or path to give each worker in {description!r}")


class _MetricsSite(Site):
    """
    The C{/metrics} site: no access log (a scrape every few seconds would fill it).
    """

    displayTracebacks = False

    def log(self, request: Any) -> None:
        pass


def _metricsSite(
    endpoints: list[SockJSResource],
    site: SockJSSite,
    reactor: Any,
    hubs: Sequence[tuple[str, Any]] = (),
) -> Site:
    """
    A site serving C{/metrics}: the endpoints' and the site's metrics, the hubs'
    (C{(name, hub)} pairs), and the process's (CPU, memory, file descriptors, garbage
    collection).
    """
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        PlatformCollector,
        ProcessCollector,
    )

    from .metrics import MetricsResource, SockJSMetrics

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    metrics = SockJSMetrics(registry)
    for endpoint in endpoints:
        metrics.watch(endpoint)
    metrics.watchSite(site)
    for name, hub in hubs:
        metrics.watchHub(hub, name)
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    return _MetricsSite(root, reactor=reactor)
