"""
What the metrics hooks cost on the hot path: CPU time per echoed message, through a real
session factory and session (a websocket-like sink that discards frames), with metrics
off (the null observer) and on (an endpoint watched by SockJSMetrics), for batches of 1
and 10 messages per network read.

    .venv/bin/python bench/metrics_overhead.py [ROOT]

ROOT (default: this checkout) is where sockjs_twisted is imported from, so the same
script measures another checkout (e.g. one without the hooks) for comparison; "on" is
skipped where sockjs_twisted.metrics does not exist.  Times are process CPU time, the
best of 15 runs of 200,000 messages, so other load on the machine matters less.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(__file__))
sys.path.insert(0, os.path.abspath(ROOT))

from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402
from zope.interface import implementer  # noqa: E402

from sockjs_twisted._options import SockJSOptions  # noqa: E402
from sockjs_twisted._registry import SessionRegistry  # noqa: E402
from sockjs_twisted._session import ConnectionInfo  # noqa: E402
from sockjs_twisted.interfaces import ISessionSink  # noqa: E402
from sockjs_twisted.testserver import EchoFactory  # noqa: E402

MESSAGES = 200_000
RUNS = 15


@implementer(ISessionSink)
class _DiscardingSink:
    protocolName = "websocket"
    sinkPaused = False

    def bindSession(self, session: Any) -> None:
        pass

    def writeFrame(self, frame: str) -> None:
        pass

    def writeMessages(self, quoted: list[str]) -> None:
        pass

    def finishSink(self, code: int, reason: str) -> None:
        pass


class _Endpoint:
    def __init__(self, sessions: SessionRegistry) -> None:
        self.sessions = sessions


def perMessage(metrics: bool, batch: int) -> float:
    """
    Nanoseconds of CPU per echoed message.
    """
    registry = SessionRegistry(EchoFactory(), SockJSOptions(), Clock())
    if metrics:
        from sockjs_twisted.metrics import SockJSMetrics

        SockJSMetrics().watch(_Endpoint(registry))
    address = IPv4Address("TCP", "127.0.0.1", 1)
    session = registry.openSession(
        None, _DiscardingSink(), ConnectionInfo(address, address, {}, "/"), registered=False
    )
    assert session is not None
    messages = [b"hello world"] * batch
    started = time.process_time()
    for _ in range(MESSAGES // batch):
        registry.beginBatch()
        session.messagesReceived(messages)
        registry.endBatch()
    return (time.process_time() - started) / MESSAGES * 1e9


def main() -> None:
    try:
        import sockjs_twisted.metrics  # noqa: F401
    except ImportError:
        modes = [False]
    else:
        modes = [False, True]
    for metrics in modes:
        cells = [
            f"batch {batch}: {min(perMessage(metrics, batch) for _ in range(RUNS)):.0f} ns/msg"
            for batch in (1, 10)
        ]
        sys.stdout.write(f"{ROOT} metrics {'on ' if metrics else 'off'}  {'  '.join(cells)}\n")


if __name__ == "__main__":
    main()
