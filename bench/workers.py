"""Scale-out benchmark: one process, then ``--workers 1`` and ``--workers 2`` (HAProxy in
front, Redis carrying the broadcasts between workers), under the same load generator
(loadgen.js) and scenarios as bench.py: websocket echo with 100 sessions (A100) and
broadcast to 1,000 sessions (E).

    python3 bench/workers.py            # full: about 2 minutes
    python3 bench/workers.py --quick    # tiny counts, checks answers
    python3 bench/workers.py --json out.json

Nothing is pinned to a CPU here: the servers, HAProxy, redis-server and the load
generator share the machine's cores, the same way for every configuration.  On a
2-core machine the load generator takes a good part of one core, so two workers cannot
double the throughput; the table shows the CPU each side used.

The standard test services serve the load (``/echo`` and ``/broadcast``; ``/broadcast``
publishes through the hub: in-process for one process, Redis with ``--redis``).
Standard library only, beside bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import bench

CONFIGS = [
    ("single", []),
    ("workers1", ["--workers", "1"]),
    ("workers2", ["--workers", "2"]),
]


def process_tree(root: int) -> List[int]:
    """root and its descendants, from /proc."""
    parents: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def cpu_seconds(pids: List[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


class Sampler:
    """CPU seconds of some processes, sampled every 0.1 s in a thread: the busiest
    one-second window is the throughput phase's."""

    def __init__(self, pids: List[int]) -> None:
        import threading

        self.pids = pids
        self.samples: List[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), cpu_seconds(self.pids)))
            time.sleep(0.1)

    def stop(self) -> float:
        """The most cores used over any one second."""
        self._stop.set()
        self._thread.join()
        best, j = 0.0, 0
        for t, c in self.samples:
            while self.samples[j][0] < t - 1.0:
                j += 1
            t0, c0 = self.samples[j]
            if t - t0 >= 0.9:
                best = max(best, (c - c0) / (t - t0))
        return best


def start_redis(logf) -> tuple[subprocess.Popen, int]:
    port = bench.free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.3)
    return proc, port


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=os.path.join(bench.OUT, "workers.json"))
    parser.add_argument(
        "--python",
        default=next(
            (
                p
                for p in (
                    bench.venv_python("cpython"),
                    os.path.join(bench.ROOT, ".venv", "bin", "python"),
                )
                if os.path.exists(p)
            ),
            sys.executable,
        ),
        help="the Python that runs the server (with this repository and Twisted importable)",
    )
    args = parser.parse_args(argv)
    if shutil.which("haproxy") is None or shutil.which("redis-server") is None:
        bench.log("needs haproxy and redis-server on PATH")
        return 1
    bench.raise_nofile()
    plan = [s for s in bench.scenarios(args.quick) if s.key in ("A100", "A10", "E")]
    plan = [s for s in plan if s.key != "A10" or args.quick]
    os.makedirs(bench.OUT, exist_ok=True)
    report: Dict[str, Any] = {
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "configs": {},
    }
    failures: List[str] = []
    env = dict(os.environ, PYTHONPATH=bench.ROOT)
    with open(os.path.join(bench.OUT, "workers.log"), "w") as logf:
        for name, extra in CONFIGS:
            entry: Dict[str, Any] = report["configs"].setdefault(name, {})
            for scenario in plan:
                redis = None
                argv = [args.python, "-m", "twisted", "sockjs"]
                port = bench.free_port()
                argv += ["--port", f"tcp:{port}:interface=127.0.0.1", *extra]
                if extra:
                    redis, redis_port = start_redis(logf)
                    argv += ["--redis", f"redis://127.0.0.1:{redis_port}"]
                bench.log(f"{name} {scenario.key}: {' '.join(argv)}")
                proc = subprocess.Popen(
                    argv,
                    cwd=bench.ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                )
                try:
                    problem = bench.wait_ready(proc, port, "sockjs", ["/echo", "/broadcast"], 60)
                    if problem is None and extra:
                        # Every worker behind HAProxy, not only the first.
                        time.sleep(3)
                    if problem:
                        failures.append(f"{name}: {problem}")
                        break
                    running = bench.Running(proc, port, 0.0, None)
                    server = bench.Server(name, "cpython", lambda p, s: [])
                    pids = process_tree(proc.pid) + ([redis.pid] if redis else [])
                    sampler = Sampler(pids)
                    deadline = 40 if args.quick else 240
                    result = bench.run_loadgen(
                        scenario, server, running, None, deadline, logf, "lite"
                    )
                    server_cores = sampler.stop()
                    throughput = bench.rates(bench.phase(result, "throughput"))
                    rate = throughput.get("per_wall_s")
                    entry[scenario.key] = {
                        "title": scenario.title,
                        "per_wall_s": rate,
                        "per_server_side_cpu_s": rate / server_cores
                        if rate and server_cores
                        else None,
                        "loadgen_cpu_share": throughput.get("loadgen_cpu_share"),
                        "server_side_cores": server_cores,
                        "processes": len(pids),
                        "errors": result.get("errors", 0),
                        "error_samples": result.get("error_samples", [])[:3],
                    }
                    if result.get("errors"):
                        failures.append(f"{name} {scenario.key}: {result.get('error_samples')}")
                finally:
                    bench.stop(proc, 20)
                    if redis is not None:
                        bench.stop(redis)
    report["failures"] = failures
    report["load_after"] = os.getloadavg()
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    rows = [f"{'':<46}" + "".join(f"{n:>14}" for n, _ in CONFIGS)]
    for scenario in plan:
        rows.append(scenario.title)
        unit = "deliveries/s" if scenario.key == "E" else "messages/s"
        for label, key, fmt in (
            (f"  {unit}", "per_wall_s", bench.human),
            ("  server-side cores (busiest second)", "server_side_cores", lambda v: f"{v:.2f}"),
            (f"  {unit} per server-side CPU s (approx.)", "per_server_side_cpu_s", bench.human),
            ("  load generator cores used", "loadgen_cpu_share", lambda v: f"{v:.2f}"),
        ):
            cells = []
            for n, _ in CONFIGS:
                v = report["configs"].get(n, {}).get(scenario.key, {}).get(key)
                cells.append((fmt(v) if isinstance(v, (int, float)) else "-").rjust(14))
            rows.append(f"{label:<46}" + "".join(cells))
    rows.append(
        f"\n{os.cpu_count()} CPUs, nothing pinned: servers, HAProxy, redis-server and the load "
        "generator share them. server-side = the server's processes (supervisor, workers, "
        "HAProxy) and redis-server. Load average (1 min) before/after: "
        f"{report['load_before'][0]:.1f}/{report['load_after'][0]:.1f}: other processes "
        "running at the same time make every figure lower and noisier."
    )
    print("\n".join(rows))
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
