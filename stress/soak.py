"""
Soak: thousands of sessions opened and abandoned, while a control session echoes.

A server runs L{stress.servers.StressFactory} (echo, and C{!stats}: the number of live
protocols, counted in C{connectionMade} / C{connectionLost}) with C{--disconnect-delay}.
A control websocket session echoes numbered messages throughout and checks that none is
lost, duplicated or reordered.  Meanwhile C{--sessions} sessions are opened and abandoned:

  - 80% xhr polling: C{POST .../xhr} answers C{o}, and the session is never polled again;
  - 10% websocket, dropped without a close handshake (half with a FIN, half with a reset);
  - 10% xhr_streaming, aborted mid-stream after the open frame (half FIN, half reset).

After the disconnect delay (and a margin) every abandoned session must have been reaped:
the live protocol count back to 1 (the control), the server's open file descriptors back
near their baseline.  Reports the time to open the sessions, the time to reap them, and the
server's file descriptors and RSS (baseline, peak, after).

    python stress/soak.py [--sessions 10000] [--disconnect-delay 2] [--json out.json]

Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import queue
import sys
import threading
import time
from collections import Counter, deque
from typing import Any, Optional

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stress._client import Deadline, Sampler, ServerProcess, connect, megabytes

PREFIX = "/soak"
# Of every 20 sessions: 16 xhr, then one of each of these.
MIX = ["xhr"] * 16 + ["websocket", "websocket_reset", "xhr_streaming", "xhr_streaming_reset"]
FD_SLACK = 8
CONTROL_WINDOW = 4


class _StatsRequest:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Optional[dict[str, Any]] = None


class EchoControl:
    """
    The control session: a websocket that echoes numbered messages (up to
    L{CONTROL_WINDOW} in flight) from a thread until stopped, checks each comes back once
    and in order, and carries C{!stats} requests in between.

    :ivar sent: Messages sent.
    :ivar received: Echoes received.
    :ivar lost: Echoes that never came (a gap in the numbers).
    :ivar duplicated: Echoes that came again, or late (out of order).
    :ivar errors: Anything else that went wrong.
    :ivar maxRoundTrip: The longest wait for an echo, in seconds.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.connection = connect("websocket", port, PREFIX)
        self.timeout = timeout
        self.sent = 0
        self.received = 0
        self.lost = 0
        self.duplicated = 0
        self.errors: list[str] = []
        self.maxRoundTrip = 0.0
        self._sentAt: deque[float] = deque()
        self._requests: queue.Queue[_StatsRequest] = queue.Queue()
        self._waiting: deque[_StatsRequest] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> EchoControl:
        self._thread.start()
        return self

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """
        The server's C{!stats}, asked on the control session.
        """
        request = _StatsRequest()
        self._requests.put(request)
        if not request.done.wait(timeout) or request.answer is None:
            raise RuntimeError(f"no stats from the control session: {self.errors}")
        return request.answer

    def stop(self) -> None:
        """
        Stop sending, wait (5 seconds at most) for the echoes in flight, and close.
        """
        self._stop.set()
        self._thread.join(self.timeout)
        deadline = Deadline(5)
        for _ in range(100000):
            if not self._sentAt or self.errors or deadline.expired:
                break
            for kind, value in self.connection.events(deadline.remaining()):
                self._event(kind, value)
            if self.connection.eof:
                self.errors.append("the control session's connection closed")
        self.connection.close()

    def _run(self) -> None:
        deadline = Deadline(self.timeout)
        connection = self.connection
        try:
            for _ in range(100_000_000):
                if self._stop.is_set() or deadline.expired:
                    break
                while not self._requests.empty():
                    request = self._requests.get_nowait()
                    connection.send(["!stats"])
                    self._waiting.append(request)
                if len(self._sentAt) < CONTROL_WINDOW:
                    connection.send([f"echo {self.sent}"])
                    self._sentAt.append(time.monotonic())
                    self.sent += 1
                for kind, value in connection.events(0.05):
                    self._event(kind, value)
                if connection.eof:
                    self.errors.append("the control session's connection closed")
                    break
                if self.errors:
                    break
        except Exception as e:
            self.errors.append(f"control: {e!r}")
        finally:
            for request in self._waiting:
                request.done.set()
            while not self._requests.empty():
                self._requests.get_nowait().done.set()

    def _event(self, kind: str, value: Any) -> None:
        if kind == "h":
            return
        if kind != "m":
            self.errors.append(f"control got {kind} {value!r}")
            return
        if value.startswith("{"):
            request = self._waiting.popleft()
            request.answer = json.loads(value)
            request.done.set()
            return
        number = int(value.split()[1])
        expected = self.received + self.lost
        if number < expected:
            self.duplicated += 1
            return
        if number > expected:
            self.lost += number - expected
            for _ in range(number - expected):
                self._sentAt.popleft()
        self.received += 1
        self.maxRoundTrip = max(self.maxRoundTrip, time.monotonic() - self._sentAt.popleft())


def abandon(kind: str, port: int, timeout: float) -> Optional[str]:
    """
    Open one session on C{kind}'s transport, check its open frame, and walk away.

    :return: What went wrong, or C{None}.
    """
    transport = kind.replace("_reset", "")
    try:
        connection = connect(transport, port, PREFIX, timeout=timeout)
    except Exception as e:
        return f"{kind}: {e!r}"
    if kind.endswith("_reset"):
        connection.abort()
    else:
        connection.close()
    return None


def soak(sessions: int, disconnectDelay: float, workers: int, margin: float) -> dict[str, Any]:
    """
    One soak run.
    """
    args = [
        "--factory",
        "stress.servers.StressFactory",
        "--prefix",
        PREFIX,
        "--disconnect-delay",
        str(disconnectDelay),
    ]
    kinds = [MIX[i % len(MIX)] for i in range(sessions)]
    result: dict[str, Any] = {
        "sessions": sessions,
        "disconnect_delay": disconnectDelay,
        "workers": workers,
        "mix": dict(Counter(kinds)),
        "server_args": args,
    }
    openTimeout = max(60.0, sessions / 50)
    with ServerProcess(*args) as server:
        control = EchoControl(server.port, timeout=openTimeout + disconnectDelay + margin + 60)
        control.start()
        try:
            before = control.stats()
            result["live_baseline"] = before["live"]
            result["fds_baseline"] = fdBaseline = server.fds()
            result["rss_baseline"] = server.rss()
            sampler = Sampler(server, interval=0.05, fds=True).start()

            started = time.monotonic()
            problems: list[str] = []
            peakLive = before["live"]
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(abandon, kind, server.port, 10.0) for kind in kinds]
                deadline = Deadline(openTimeout)
                pending = set(futures)
                for _ in range(100000):
                    if not pending or deadline.expired:
                        break
                    _, pending = concurrent.futures.wait(pending, timeout=0.25)
                    peakLive = max(peakLive, control.stats()["live"])
                for future in pending:
                    future.cancel()
                problems = [
                    problem
                    for problem in (f.result() for f in futures if f.done())
                    if problem is not None
                ]
                problems += ["not opened in time"] * len(pending)
            opened = time.monotonic()
            result["open_seconds"] = round(opened - started, 2)
            result["open_rate"] = round(sessions / max(opened - started, 1e-6))
            result["open_failures"] = len(problems)
            result["open_failure_samples"] = problems[:5]

            reapDeadline = Deadline(disconnectDelay + margin)
            reaped: Optional[float] = None
            fdsBack: Optional[float] = None
            for _ in range(100000):
                stats = control.stats()
                peakLive = max(peakLive, stats["live"])
                now = time.monotonic()
                if reaped is None and stats["live"] == before["live"]:
                    reaped = now - opened
                if fdsBack is None and server.fds() <= fdBaseline + FD_SLACK:
                    fdsBack = now - opened
                if (reaped is not None and fdsBack is not None) or reapDeadline.expired:
                    break
                time.sleep(0.1)
            result["reap_seconds"] = None if reaped is None else round(reaped, 2)
            result["fds_back_seconds"] = None if fdsBack is None else round(fdsBack, 2)
            result["peak_live"] = peakLive
            after = control.stats()
            result["live_after"] = after["live"]
            result["opened_protocols"] = after["opened"]
            result["lost"] = after["lost"]
            result["double_lost"] = after["doubleLost"]
            result["fds_after"] = server.fds()
            result["rss_after"] = server.rss()
            sampler.stop()
        finally:
            control.stop()
        result["fds_peak"] = sampler.peakFds
        result["rss_peak"] = sampler.peakRss
        result["control"] = {
            "sent": control.sent,
            "received": control.received,
            "lost": control.lost,
            "duplicated_or_reordered": control.duplicated,
            "errors": control.errors,
            "max_round_trip_seconds": round(control.maxRoundTrip, 3),
        }
        result["server_errors"] = server.errors()
    ctl = result["control"]
    result["checks"] = {
        "every session opened": result["open_failures"] == 0,
        "every session reached the protocol": result["opened_protocols"] == sessions + 1,
        "live protocols back to 1 (the control)": result["live_after"] == 1
        and result["reap_seconds"] is not None,
        f"file descriptors back within {FD_SLACK} of the baseline": result["fds_after"]
        <= result["fds_baseline"] + FD_SLACK,
        "every abandoned session lost once": sum(result["lost"].values()) == sessions
        and result["double_lost"] == 0,
        "control echoes: none lost, duplicated or reordered": ctl["lost"] == 0
        and ctl["duplicated_or_reordered"] == 0
        and not ctl["errors"]
        and 0 < ctl["received"] == ctl["sent"],
        "no errors in the server log": not result["server_errors"],
    }
    result["ok"] = all(result["checks"].values())
    return result


def report(r: dict[str, Any]) -> str:
    """
    The results as text, then every failed check.
    """

    def seconds(value: Optional[float]) -> str:
        return "never" if value is None else f"{value:.2f} s"

    ctl = r["control"]
    lines = [
        f"sessions             {r['sessions']}  {r['mix']}",
        f"open                 {r['open_seconds']:.2f} s ({r['open_rate']}/s, "
        f"{r['workers']} client threads), {r['open_failures']} failed",
        f"disconnect delay     {r['disconnect_delay']} s",
        f"reaped               {seconds(r['reap_seconds'])} after the last was opened "
        f"(live protocols: peak {r['peak_live']}, after {r['live_after']})",
        f"fds                  baseline {r['fds_baseline']}, peak {r['fds_peak']}, "
        f"after {r['fds_after']} (back within {FD_SLACK} after {seconds(r['fds_back_seconds'])})",
        f"RSS (MiB)            baseline {megabytes(r['rss_baseline'])}, peak "
        f"{megabytes(r['rss_peak'])}, after {megabytes(r['rss_after'])}",
        f"control              {ctl['sent']} sent, {ctl['received']} echoed, {ctl['lost']} lost, "
        f"{ctl['duplicated_or_reordered']} duplicated/reordered, longest round trip "
        f"{ctl['max_round_trip_seconds']} s",
        f"lost, by reason      {r['lost']}",
        f"result               {'ok' if r['ok'] else 'FAIL'}",
    ]
    for check, passed in r["checks"].items():
        if not passed:
            lines.append(f"FAILED: {check}")
    for name in ("open_failure_samples", "server_errors"):
        if r.get(name):
            lines.append(f"  {name}: {r[name]}")
    if ctl["errors"]:
        lines.append(f"  control errors: {ctl['errors']}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--disconnect-delay", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=16, help="client threads opening sessions")
    parser.add_argument(
        "--margin", type=float, default=10.0, help="seconds past the disconnect delay to wait"
    )
    parser.add_argument("--json", help="write the results to this file")
    options = parser.parse_args(argv)
    try:
        result = soak(options.sessions, options.disconnect_delay, options.workers, options.margin)
    except Exception as e:
        result = {"ok": False, "exception": repr(e)}
        print(f"FAILED: {e!r}")
    else:
        print(report(result))
    if options.json:
        with open(options.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
