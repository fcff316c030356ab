"""
C{twistd sockjs}: serve the standard test services, or your own protocol factory, over
SockJS.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from typing import Any, Optional

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.reflect import namedAny
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from ._factory import SockJSSite, mount
from ._options import DEFAULT_SOCKJS_URL, SockJSOptions
from ._resource import SockJSResource
from ._workers import INSTALL_HAPROXY, WorkerSupervisor, freePort, haproxyConfig, hashDepth
from .hub import IHub, LocalHub, hubFromURL, parseRedisURL
from .testserver import testServices

__all__ = ["Options", "makeService"]

_log = Logger(namespace="sockjs_twisted")


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
        "tests use. twistd's own options (-n, --pidfile, --logfile, ...) go before 'sockjs', and "
        "this command's options after it: twistd also has a --prefix (its syslog prefix), "
        "so `twistd -n --prefix /chat sockjs` is refused; write `twistd -n sockjs --prefix "
        "/chat`."
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
        [
            "prefix",
            None,
            "",
            "With --factory: the path to serve it under, e.g. /chat (after 'sockjs': "
            "before it, --prefix is twistd's syslog prefix).",
        ],
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
        # -- scale-out ---------------------------------------------------------------
        [
            "workers",
            None,
            None,
            "Run this many worker processes behind an HAProxy (which must be on PATH) "
            "on --port; each session stays on one worker.",
            _positiveInt,
        ],
        [
            "redis",
            None,
            None,
            "redis://[:password@]host[:port] URL: the hub (/broadcast, or your factory's "
            "'hub' attribute) carries messages between processes over Redis pub/sub.",
        ],
    ]

    optFlags: list[Any] = [
        ["no-websocket", None, "Do not offer the websocket transports."],
        ["jsessionid", None, "Set a JSESSIONID cookie, for sticky load balancers."],
        ["disable-cors", None, "Send no CORS headers."],
        [
            "print-haproxy-config",
            None,
            "Print an HAProxy configuration for the --backend servers (listening on "
            "--port) and exit.",
        ],
        ["supervised", None, "(Used by --workers.) Exit when standard input closes."],
        [
            "no-write-through",
            None,
            "Leave Twisted's TCP transports as they are: writes wait for the reactor's next "
            "iteration instead of being sent at the end of the current one (see the "
            "deployment docs).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["allowed_origins"] = []
        self["backends"] = []

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

    def opt_backend(self, hostPort: str) -> None:
        """
        With --print-haproxy-config: a SockJS server, host:port (may repeat).
        """
        host, _, port = hostPort.rpartition(":")
        if not host or not port.isdigit():
            raise usage.UsageError(f"--backend {hostPort}: expected host:port")
        self["backends"].append(hostPort)

    def postOptions(self) -> None:
        self._refuseTwistdPrefix()
        endpoints = list(self["listen"])
        if self["port"] is not None or not endpoints:
            endpoints.insert(0, _endpointDescription(self["port"] or "8081"))
        for description in endpoints:
            _checkEndpoint(description)
        self["endpoints"] = endpoints
        if self["prefix"] and not self["factory"]:
            raise usage.UsageError("--prefix goes with --factory")
        try:
            SockJSOptions(prefix=self["prefix"].rstrip("/"), **self.serverOptions())
        except ValueError as e:
            raise usage.UsageError(_optionName(str(e))) from None
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
        self._scaleOutOptions()

    def _scaleOutOptions(self) -> None:
        if self["redis"]:
            try:
                parseRedisURL(self["redis"])
            except ValueError as e:
                raise usage.UsageError(f"--redis: {e}") from None
        if self["print-haproxy-config"] or self["workers"]:
            bind = _haproxyBind(self["endpoints"])
            if bind is None:
                raise usage.UsageError(
                    "--workers and --print-haproxy-config take a TCP --port "
                    "(8081 or tcp:8081:interface=127.0.0.1), and no --listen"
                )
            self["bind"], self["publicPort"] = bind
        if self["print-haproxy-config"]:
            if not self["backends"]:
                raise usage.UsageError("--print-haproxy-config needs --backend host:port")
            sys.stdout.write(self.haproxyConfig(self["backends"]))
            sys.stdout.flush()
            raise SystemExit(0)
        if self["backends"]:
            raise usage.UsageError("--backend goes with --print-haproxy-config")
        if self["workers"] and shutil.which("haproxy") is None:
            raise usage.UsageError(INSTALL_HAPROXY)

    def healthPath(self) -> str:
        """
        The path a proxy's health check GETs: an endpoint's C{/info}.
        """
        if self["factory"]:
            return self["prefix"].rstrip("/") + "/info"
        return "/echo/info"

    def haproxyConfig(self, backends: list[str]) -> str:
        """
        The HAProxy configuration for C{backends} (C{host:port}), on C{--port}.
        """
        return haproxyConfig(
            self["bind"],
            backends,
            hashDepth(self["prefix"]) if self["factory"] else 2,
            self.healthPath(),
            cookie=bool(self["jsessionid"]),
        )

    def workerArguments(self) -> list[str]:
        """
        The options a worker of C{--workers} gets (all but where to listen).
        """
        # Each worker gets its own --metrics-port (workerMetricsEndpoint).
        skip = {"port", "workers", "metrics-port"}
        args: list[str] = []
        for long, _, default, *_ in self.optParameters:
            value = self[long]
            if long not in skip and value is not None and value != default:
                args.append(f"--{long}={value}")
        for long, *_ in self.optFlags:
            if long not in {"print-haproxy-config", "supervised"} and self[long]:
                args.append(f"--{long}")
        for origin in self["allowed_origins"]:
            args.append(f"--allowed-origin={origin}")
        return args

    def _refuseTwistdPrefix(self) -> None:
        """
        C{twistd -n --prefix /chat sockjs} gives C{--prefix} to twistd (its syslog prefix),
        not to this command: refuse it, unless twistd logs to syslog, where that is what it
        means.
        """
        parent = self.parent
        if parent is None or parent.get("syslog"):
            return
        twistdPrefix = parent.get("prefix", "twisted")
        if twistdPrefix != "twisted":
            raise usage.UsageError(
                f"--prefix {twistdPrefix} came before 'sockjs', where it is twistd's own "
                f"(syslog) option; put it after: twistd -n sockjs --prefix {twistdPrefix}"
            )

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


def _haproxyBind(endpoints: list[str]) -> Optional[tuple[str, int]]:
    """
    HAProxy's C{bind} for the one C{tcp:PORT[:interface=HOST]} endpoint, and its port (a
    free one for port 0); C{None} for anything else.
    """
    if len(endpoints) != 1:
        return None
    parts = endpoints[0].split(":")
    if parts[0] != "tcp" or len(parts) < 2 or not parts[1].isdigit():
        return None
    interface = ""
    for part in parts[2:]:
        key, _, value = part.partition("=")
        if key != "interface":
            return None
        interface = value
    port = int(parts[1]) or freePort(interface or "0.0.0.0")
    return f"{interface}:{port}", port


# SockJSOptions' attribute names, as the command line spells them.
_FLAGS = {
    "sockjs_url": "--sockjs-url",
    "prefix": "--prefix",
    "response_limit": "--response-limit",
    "heartbeat_delay": "--heartbeat-delay",
    "disconnect_delay": "--disconnect-delay",
    "max_message_size": "--max-message-size",
    "max_body_size": "--max-body-size",
    "max_sessions": "--max-sessions",
    "max_queue_size": "--max-queue-size",
    "allowed_origins": "--allowed-origin",
}


def _optionName(message: str) -> str:
    """
    An option's validation error, naming the command-line flag instead of the attribute.
    """
    name, _, rest = message.partition(" ")
    if name in _FLAGS:
        if name == "allowed_origins":
            return "--allowed-origin needs an origin (https://example.com) or a pattern"
        return f"{_FLAGS[name]} {rest}"
    return message


def _checkEndpoint(description: str) -> None:
    """
    Parse an endpoint description now, so that a bad one is a usage error.

    :raise usage.UsageError: if C{serverFromString} cannot make an endpoint of it.
    """
    try:
        serverFromString(_NoReactor(), description)
    except Exception as e:
        raise usage.UsageError(f"bad endpoint description {description!r}: {e}") from None


class _NoReactor:
    """
    Stands in for the reactor while an endpoint description is only parsed: endpoints keep
    their reactor for later, and parsing must not use it.
    """


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


def _locations(
    port: IListeningPort, secure: bool, paths: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """
    Where each endpoint is on C{port}: C{("echo", "http://127.0.0.1:8081/echo")}.  A port
    on every interface is shown with the loopback address, where a browser on this machine
    finds it.

    :param paths: C{(name, path)} of each endpoint.
    """
    address = port.getHost()
    if isinstance(address, UNIXAddress):
        where = address.name.decode() if isinstance(address.name, bytes) else address.name
        return [(name, f"{path} on unix:{where}") for name, path in paths]
    if isinstance(address, IPv6Address):
        host = "[{}]".format("::1" if address.host == "::" else address.host)
    elif isinstance(address, IPv4Address):
        host = "127.0.0.1" if address.host == "0.0.0.0" else address.host
    else:
        return [(name, f"{path} on {address}") for name, path in paths]
    scheme = "https" if secure else "http"
    return [(name, f"{scheme}://{host}:{address.port}{path}") for name, path in paths]


@implementer(IStreamServerEndpoint)
class _Announcing:
    """
    An endpoint that logs where each SockJS endpoint is once it listens.
    """

    log = Logger()

    def __init__(
        self, endpoint: IStreamServerEndpoint, secure: bool, paths: list[tuple[str, str]]
    ) -> None:
        self._endpoint = endpoint
        self._secure = secure
        self._paths = paths

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        def announce(port: IListeningPort) -> IListeningPort:
            for name, location in _locations(port, self._secure, self._paths):
                self.log.info("SockJS {name} at {location}", name=name, location=location)
            return port

        return self._endpoint.listen(protocolFactory).addCallback(announce)


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
    if config["workers"]:
        return _workersService(config, reactor)
    options = config.serverOptions()
    root: Resource
    hub: IHub = LocalHub()
    scaleOut: list[IService] = []
    if config["redis"]:
        hub = hubFromURL(config["redis"], reactor=reactor)
        scaleOut.append(hub)  # type: ignore[arg-type]
    if config["supervised"]:
        scaleOut.append(_SupervisedService(reactor))
    if config["factory"]:
        prefix = config["prefix"].rstrip("/")
        if hasattr(config["userFactory"], "hub"):
            config["userFactory"].hub = hub
        endpoint = SockJSResource(config["userFactory"], reactor=reactor, prefix=prefix, **options)
        if prefix:
            root = Resource()
            mount(root, prefix, endpoint)
        else:
            root = endpoint
        endpoints = [endpoint]
        paths = [(config["factory"], prefix or "/")]
    else:
        root = testServices(reactor, hub=hub, **options)
        named = [(n, c) for n, c in root.children.items() if isinstance(c, SockJSResource)]
        endpoints = [child for _, child in named]
        paths = [(n.decode(), "/" + n.decode()) for n, _ in named]
    site = SockJSSite(
        root,
        reactor=reactor,
        max_body_size=options["max_body_size"],
        write_through=not config["no-write-through"],
    )
    service = _SockJSService(endpoints)
    for child in scaleOut:
        child.setServiceParent(service)
    for description in config["endpoints"]:
        listening = strports.service(description, site, reactor=reactor)
        secure = description.split(":", 1)[0] in ("ssl", "tls")
        listening.endpoint = _Announcing(listening.endpoint, secure, paths)
        listening.setServiceParent(service)
    if config["metrics-port"] is not None:
        metricsSite = _metricsSite(endpoints, site, reactor, hubs=[("default", hub)])
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


def _workersService(config: Options, reactor: Any) -> IService:
    """
    C{--workers}: the supervisor of the workers and of HAProxy.
    """
    if not config["redis"]:
        _log.warn(
            "--workers without --redis: hub messages (/broadcast, your factory's hub) "
            "stay inside each worker; pass --redis redis://host:port to carry them "
            "between workers"
        )
    metricsPort = config["metrics-port"]

    def metricsArguments(index: int) -> list[str]:
        if metricsPort is None:
            return []
        return [f"--metrics-port={workerMetricsEndpoint(metricsPort, index)}"]

    return WorkerSupervisor(
        reactor,
        config["workers"],
        config["bind"],
        config["publicPort"],
        config.workerArguments(),
        hashDepth(config["prefix"]) if config["factory"] else 2,
        config.healthPath(),
        cookie=bool(config["jsessionid"]),
        extraArguments=metricsArguments,
    )


class _StandardInputWatcher(Protocol):
    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._reactor.running:
            _log.warn("SockJS worker: the supervisor went away; stopping")
            self._reactor.stop()


class _SupervisedService(Service):
    """
    A worker of C{--workers}: stop when standard input (a pipe from the supervisor)
    closes, so that no worker outlives its supervisor.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def startService(self) -> None:
        Service.startService(self)
        from twisted.internet.stdio import StandardIO

        self._stdio = StandardIO(_StandardInputWatcher(self._reactor), reactor=self._reactor)
