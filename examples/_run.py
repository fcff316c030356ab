"""
What every example's C{main()} does: serve a resource tree on an endpoint description
(C{tcp:8081} by default), log to standard output, and close the SockJS sessions cleanly
when the reactor stops.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.task import react
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

from sockjs_twisted import SockJSResource

log = Logger()


def _description(value: str) -> str:
    """
    A bare port number means TCP on every interface.
    """
    return "tcp:" + value if value.isdigit() else value


def run(
    makeRoot: Any,
    argv: Sequence[str] | None = None,
    extra: Sequence[tuple[str, IProtocolFactory]] = (),
) -> None:
    """
    Serve C{makeRoot(reactor)} on the endpoint description given as the first command-line
    argument (default C{tcp:8081}), and each C{(description, factory)} of C{extra} too.
    Runs until interrupted.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    description = _description(args[0] if args else "8081")

    def main(reactor: Any) -> Deferred[None]:
        globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
        root: Resource = makeRoot(reactor)
        for child in root.children.values():
            if isinstance(child, SockJSResource):
                reactor.addSystemEventTrigger("before", "shutdown", child.stop)
        listening = [serverFromString(reactor, description).listen(Site(root))]
        for extraDescription, factory in extra:
            endpoint = serverFromString(reactor, _description(extraDescription))
            listening.append(endpoint.listen(factory))
        for port in listening:
            port.addCallback(
                lambda p: reactor.callWhenRunning(
                    log.info, "listening on {address}", address=p.getHost()
                )
            )
        return Deferred()  # until Ctrl-C or SIGTERM

    react(main)
