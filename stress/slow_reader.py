"""
Slow readers: clients that stop reading while the server has megabytes for them.

For each streaming transport (C{websocket}, C{xhr_streaming}, C{eventsource}) a fresh
server runs L{stress.servers.StressFactory}; a client with a small receive buffer opens a
session, asks for C{--megabytes} of numbered 64 KiB messages (pushed by a streaming
producer registered on the session transport), and stops reading.  The producer must be
paused, the server's memory must stay flat while the reader stalls, and once it reads again
every message must arrive, complete and in order.  The HTTP streaming transports run with a
large C{--response-limit}, so that one response carries everything.

Broadcast, which ignores backpressure: C{broadcast} is the standard C{/broadcast} test
service, C{broadcast_stress} is L{stress.servers.BroadcastFactory} (the same, but it
iterates over a copy of its members and answers C{!stats}).  A slow member (small receive
buffer, does not read), a bystander (C{xhr_streaming}) and a fast member (websocket) join;
the fast member sends C{--megabytes} through it, never more than 8 messages ahead of the
readers.  The slow member's queue must pass C{max_queue_size} (4 MiB) and its session be
closed with 1013, while the fast member and the bystander get everything.  The slow member
reads again as soon as the server has closed it (a client that does not answer the
websocket close within 5 seconds is dropped, by design, and would lose the close frame):
it must find an in-order prefix, then C{c[1013,...]}.

    python stress/slow_reader.py [--megabytes 64] [--transport all] [--json out.json]

Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from typing import Any, Callable, Optional

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stress._client import (
    Deadline,
    MiB,
    ProtocolError,
    Sampler,
    ServerProcess,
    SockJSConnection,
    connect,
    megabytes,
)
from stress.servers import checkNumbered, numberedMessage

MESSAGE_SIZE = 64 * 1024
SLOW_RCVBUF = 4096
RSS_LIMIT = 32 * MiB
RESPONSE_LIMIT = 1 << 30
MAX_QUEUE_SIZE = 4 * MiB
BROADCAST_WINDOW = 8
PUSH_TRANSPORTS = ("websocket", "xhr_streaming", "eventsource")
CASES = (*PUSH_TRANSPORTS, "broadcast", "broadcast_stress")


class Tally:
    """
    Checks the numbered messages of one connection as they arrive.

    :ivar received: Messages so far.
    :ivar error: The first one out of place (or the first unexpected frame).
    :ivar close: The close frame, once it came.
    """

    def __init__(self) -> None:
        self.received = 0
        self.error: Optional[str] = None
        self.close: Optional[list[Any]] = None

    def add(self, kind: str, value: Any) -> None:
        if self.close is not None:
            self.error = self.error or f"{kind} frame after the close frame"
        elif kind == "m":
            if self.error is None:
                self.error = checkNumbered(value, self.received, MESSAGE_SIZE)
            self.received += 1
        elif kind == "c":
            self.close = value
        elif kind != "h":
            self.error = self.error or f"unexpected frame {kind} {value!r}"


def readNumbered(
    connection: SockJSConnection,
    tally: Tally,
    count: int,
    deadline: Deadline,
    untilClose: bool,
) -> None:
    """
    Read numbered messages into C{tally}: until it has C{count}, or (C{untilClose}) until
    the close frame or the end of the connection.
    """
    for _ in range(4 * count + 100000):
        if tally.close is not None or (not untilClose and tally.received >= count):
            return
        event = connection.next(deadline)
        if event is None:
            break
        tally.add(*event)
    if deadline.expired and tally.error is None:
        tally.error = "timed out"


def _outcome(connection: SockJSConnection, tally: Tally) -> dict[str, Any]:
    return {
        "received": tally.received,
        "error": tally.error,
        "close": tally.close,
        "eof": connection.eof,
        "reset": connection.reset,
    }


def waitForStall(
    control: SockJSConnection, settle: float, deadline: Deadline
) -> tuple[dict[str, Any], bool]:
    """
    Poll the server until its pusher has been paused, without sending anything more, for
    C{settle} seconds (stalled), or is done (everything fitted in buffers).
    """
    last: Optional[dict[str, Any]] = None
    since = time.monotonic()
    for _ in range(100000):
        if deadline.expired:
            break
        pushers = control.stats()["pushers"]
        if pushers:
            pusher = pushers[0]
            if pusher["done"] or pusher["stopped"]:
                return pusher, False
            if last is not None and pusher["paused"] and pusher["sent"] == last["sent"]:
                if time.monotonic() - since >= settle:
                    return pusher, True
            else:
                since = time.monotonic()
                last = pusher
        time.sleep(0.05)
    return last or {}, False


def runPush(
    transport: str, size: int, settle: float, hold: float, timeout: float
) -> dict[str, Any]:
    """
    One slow reader of a pushing producer on C{transport}.
    """
    count = max(1, size // MESSAGE_SIZE)
    args = [
        "--factory",
        "stress.servers.StressFactory",
        "--prefix",
        "/stress",
        "--response-limit",
        str(RESPONSE_LIMIT),
    ]
    result: dict[str, Any] = {"case": transport, "messages": count, "server_args": args}
    with ServerProcess(*args) as server:
        control = connect("websocket", server.port, "/stress")
        try:
            control.stats()
            result["rss_baseline"] = baseline = server.rss()
            sampler = Sampler(server).start()
            reader = connect(transport, server.port, "/stress", rcvbuf=SLOW_RCVBUF)
            try:
                reader.send([f"!push {count} {MESSAGE_SIZE}"])
                pusher, stalled = waitForStall(control, settle, Deadline(timeout))
                time.sleep(hold)
                held = control.stats()["pushers"][0]
                result["rss_stall_peak"] = sampler.peakRss
                result["stalled_at"] = pusher.get("sent")
                result["stalled"] = stalled and held["sent"] == pusher["sent"]
                started = time.monotonic()
                tally = Tally()
                readNumbered(reader, tally, count, Deadline(timeout), untilClose=False)
                outcome = _outcome(reader, tally)
                result["drain_seconds"] = round(time.monotonic() - started, 2)
                after = control.stats()
            finally:
                reader.close()
            sampler.stop()
        finally:
            control.close()
        result["server_errors"] = server.errors()
    result["rss_peak"] = sampler.peakRss
    result["rss_delta"] = sampler.peakRss - baseline
    result.update(outcome)
    final = after["pushers"][0]
    result["checks"] = {
        "producer paused before the end": bool(result["stalled"]) and result["stalled_at"] < count,
        f"RSS delta <= {RSS_LIMIT // MiB} MiB": result["rss_delta"] <= RSS_LIMIT,
        "every message, in order": outcome["error"] is None and outcome["received"] == count,
        "producer finished": final["done"] and not final["stopped"],
        "session still open": not outcome["eof"] and outcome["close"] is None,
        "one connectionLost per protocol": after["doubleLost"] == 0,
        "no errors in the server log": not result["server_errors"],
    }
    return result


def join(connection: SockJSConnection, deadline: Deadline) -> None:
    """
    Join the broadcast.
    """
    answer = connection.request("!join", deadline)
    if answer != "!joined":
        raise ProtocolError(f"!join answered {answer!r}")


def runBroadcast(
    service: str, size: int, timeout: float, maxQueueSize: int = MAX_QUEUE_SIZE
) -> dict[str, Any]:
    """
    A fast member sends C{size} bytes through a broadcast that ignores backpressure, to
    itself, a bystander that reads, and a slow member that does not.

    :param service: C{"broadcast"}: the standard C{/broadcast} test service, where every
        session is a member; C{"broadcast_stress"}: L{stress.servers.BroadcastFactory},
        which members join and which answers C{!stats} (to a control session that is not
        a member).
    """
    count = max(1, size // MESSAGE_SIZE)
    standard = service == "broadcast"
    args = [
        "--response-limit",
        str(RESPONSE_LIMIT),
        "--max-queue-size",
        str(maxQueueSize),
        # The echo of a whole body must fit in the queue (SockJSOptions checks it).
        "--max-body-size",
        str(min(1024 * 1024, maxQueueSize // 2)),
    ]
    if not standard:
        args = ["--factory", "stress.servers.BroadcastFactory", "--prefix", "/broadcast", *args]
    result: dict[str, Any] = {"case": service, "messages": count, "server_args": args}
    with ServerProcess(*args) as server:
        port = server.port
        control = None if standard else connect("websocket", port, "/broadcast")
        slow = connect("websocket", port, "/broadcast", rcvbuf=SLOW_RCVBUF)
        bystander = connect("xhr_streaming", port, "/broadcast")
        fast = connect("websocket", port, "/broadcast")
        try:
            if control is not None:
                for member in (slow, bystander, fast):
                    join(member, Deadline(timeout))
                before = control.stats()
            result["rss_baseline"] = baseline = server.rss()
            sampler = Sampler(server).start()
            readers = {"fast": fast, "bystander": bystander}
            tallies = {name: Tally() for name in ("fast", "bystander", "slow")}
            sent = 0
            started = time.monotonic()
            deadline = Deadline(timeout)
            for _ in range(100 * count + 100000):
                others = [tallies["fast"], tallies["bystander"]]
                progress = min(t.received for t in others)
                if deadline.expired or progress >= count:
                    break
                if any(t.error or t.close for t in others) or fast.eof or bystander.eof:
                    break
                while sent < count and sent - progress < BROADCAST_WINDOW:
                    fast.send([numberedMessage(sent, MESSAGE_SIZE).decode("ascii")])
                    sent += 1
                if "slow_closed_after" not in result and _overflows(server):
                    # Closed: no longer a member; it reads again.
                    result["slow_closed_after"] = sent
                    readers["slow"] = slow
                readable = select.select([c.sock for c in readers.values()], [], [], 0.2)[0]
                for name, connection in readers.items():
                    if connection.sock in readable:
                        for event in connection.events(0):
                            tallies[name].add(*event)
            result["broadcast_seconds"] = round(time.monotonic() - started, 2)
            result["sent"] = sent
            for name in ("fast", "bystander"):
                result[f"{name}_received"] = tallies[name].received
                result[f"{name}_error"] = tallies[name].error
                result[f"{name}_close"] = tallies[name].close
                result[f"{name}_eof"] = readers[name].eof
            after = control.stats() if control is not None else None
            result["rss_stall_peak"] = sampler.peakRss
            readNumbered(slow, tallies["slow"], count, Deadline(timeout), untilClose=True)
            outcome = _outcome(slow, tallies["slow"])
            result["ws_close_code"] = slow.reader.closeCode
            sampler.stop()
            final = control.stats() if control is not None else None
        finally:
            for client in (control, slow, bystander, fast):
                if client is not None:
                    client.close()
        result["overflow_log_lines"] = _overflows(server)
        result["server_errors"] = server.errors()
    result["rss_peak"] = sampler.peakRss
    result["rss_delta"] = sampler.peakRss - baseline
    result.update(outcome)
    close = outcome["close"]
    checks = {
        f"RSS delta <= {RSS_LIMIT // MiB} MiB": result["rss_delta"] <= RSS_LIMIT,
        "fast member got everything, in order": _complete(result, "fast", count),
        "bystander got everything, in order": _complete(result, "bystander", count),
        "one session closed for its queue": result["overflow_log_lines"] == 1,
        "slow member: an in-order prefix": outcome["error"] is None
        and 0 < outcome["received"] < count,
        "slow member: then c[1013, ...]": close is not None and close[0] == 1013,
        "no errors in the server log": not result["server_errors"],
    }
    if control is not None:
        assert after is not None and final is not None
        checks["three members joined"] = before["members"] == 3
        checks["only the slow member lost, for its queue"] = (
            after["members"] == 2
            and list(after["lost"].values()) == [1]
            and "outgoing queue over limit" in _lostReasons(after)
        )
        checks["one connectionLost per protocol"] = final["doubleLost"] == 0
        result["lost"] = after["lost"]
    result["checks"] = checks
    return result


def _complete(result: dict[str, Any], name: str, count: int) -> bool:
    return (
        result[f"{name}_received"] == count
        and result[f"{name}_error"] is None
        and result[f"{name}_close"] is None
        and not result[f"{name}_eof"]
    )


def _lostReasons(stats: dict[str, Any]) -> str:
    return " ".join(stats["lost"])


def _overflows(server: ServerProcess) -> int:
    """
    How many sessions the server closed for their queue, as its log says.
    """
    return sum(1 for line in list(server.log) if "outgoing queue passed" in line)


def runCase(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """
    Run one case; an exception fails it.
    """
    try:
        result = run()
    except Exception as e:
        result = {"case": name, "checks": {"ran to completion": False}, "exception": repr(e)}
    result["ok"] = all(result["checks"].values())
    return result


def table(results: list[dict[str, Any]], size: int) -> str:
    """
    The results as a text table, then every failed check.
    """
    rows = [
        (
            "case",
            "MiB",
            "msgs",
            "paused at",
            "RSS base",
            "stall peak",
            "peak",
            "delta",
            "received",
            "close",
            "result",
        )
    ]
    for r in results:
        if "exception" in r:
            rows.append((r["case"], *["-"] * 9, "FAIL"))
            continue
        if r["case"].startswith("broadcast"):
            paused = f"1013 after {r.get('slow_closed_after', '?')}"
            received = (
                f"{r['received']} (slow), {r['fast_received']}+{r['bystander_received']} (others)"
            )
        else:
            paused = f"{r['stalled_at']} ({megabytes(r['stalled_at'] * MESSAGE_SIZE)} MiB)"
            received = f"{r['received']}/{r['messages']}"
        rows.append(
            (
                r["case"],
                megabytes(size),
                str(r["messages"]),
                paused,
                megabytes(r["rss_baseline"]),
                megabytes(r["rss_stall_peak"]),
                megabytes(r["rss_peak"]),
                megabytes(r["rss_delta"]),
                received,
                "-" if r["close"] is None else json.dumps(r["close"]),
                "ok" if r["ok"] else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append("(RSS in MiB; 'stall peak' is the peak while the reader did not read)")
    for r in results:
        for check, passed in r["checks"].items():
            if not passed:
                lines.append(f"FAILED {r['case']}: {check}")
        if "exception" in r:
            lines.append(f"  {r['exception']}")
        for name in ("error", "fast_error", "bystander_error", "fast_close", "server_errors"):
            if r.get(name):
                lines.append(f"  {r['case']} {name}: {r[name]}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=float, default=64, help="MiB per case (64)")
    parser.add_argument("--transport", choices=[*CASES, "all"], default="all")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds without progress that is a stall"
    )
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the stall is held")
    parser.add_argument("--timeout", type=float, default=300, help="bound of each phase")
    parser.add_argument(
        "--max-queue-size",
        type=float,
        default=MAX_QUEUE_SIZE / MiB,
        help="MiB; the broadcast server's max_queue_size (4)",
    )
    options = parser.parse_args(argv)
    size = int(options.megabytes * MiB)
    cases = CASES if options.transport == "all" else (options.transport,)
    print(
        f"{megabytes(size)} MiB per case in {MESSAGE_SIZE // 1024} KiB messages; slow readers "
        f"use SO_RCVBUF={SLOW_RCVBUF}; the server runs with --response-limit {RESPONSE_LIMIT} "
        "so that one xhr_streaming / eventsource response carries everything; broadcast "
        f"with --max-queue-size {int(options.max_queue_size * MiB)}.",
        flush=True,
    )
    results = []
    for case in cases:
        if case.startswith("broadcast"):
            run = lambda case=case: runBroadcast(  # type: ignore[misc]  # noqa: E731
                case, size, options.timeout, int(options.max_queue_size * MiB)
            )
        else:
            run = lambda case=case: runPush(  # type: ignore[misc]  # noqa: E731
                case, size, options.settle, options.hold, options.timeout
            )
        results.append(runCase(case, run))
        print(f"  {case}: {'ok' if results[-1]['ok'] else 'FAIL'}", flush=True)
    print(table(results, size))
    ok = all(r["ok"] for r in results)
    if options.json:
        with open(options.json, "w") as f:
            json.dump(
                {
                    "megabytes": options.megabytes,
                    "message_size": MESSAGE_SIZE,
                    "rcvbuf": SLOW_RCVBUF,
                    "rss_limit": RSS_LIMIT,
                    "response_limit": RESPONSE_LIMIT,
                    "max_queue_size": int(options.max_queue_size * MiB),
                    "cases": results,
                    "ok": ok,
                },
                f,
                indent=2,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
