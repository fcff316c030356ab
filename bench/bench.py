"""Run the SockJS benchmark: every server in turn, the same scenarios, one table.

Invoked by ``bench/run`` (which also installs what is missing); see bench/README.md.
Standard library only, so it runs under any Python 3.9+.

Each server is started pinned to CPU 0 and the Node.js load generator (loadgen.js) to
CPU 1.  For every measured phase the load generator records wall time, the server's
CPU time (utime + stime from /proc/PID/stat) and its own CPU time, so every rate is
reported per wall-clock second and per second of server CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, ".out")
SERVER_CPU = 0
LOAD_CPU = 1
NOFILE = 200_000
REFERENCE = "sockjs-node"


def venv_python(name: str) -> str:
    return os.path.join(BENCH, f".venv-{name}", "bin", "python")


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """One server under test: how to start it and what it speaks.

    command(port, service) gives the argv; service is None for a server that serves both
    /echo and /broadcast at once, else "echo" or "broadcast" for one that serves one
    service per process (then it is restarted between the two)."""

    name: str
    component: str  # what setup.sh must install for it
    command: Callable[[int, Optional[str]], List[str]]
    mode: str = "sockjs"  # "sockjs", or "raw" for a plain WebSocket echo (no SockJS framing)
    note: str = ""
    one_service_per_process: bool = False
    env: Dict[str, str] = field(default_factory=dict)


def ours(python: str) -> Callable[[int, Optional[str]], List[str]]:
    """Our server through its twistd plugin, serving bench/servers/twisted_services.py's
    factories with the library's default options (the plugin's standard test services
    give /echo response_limit 4096, for the protocol tests).  `--factory` serves one
    factory per process."""

    def command(port: int, service: Optional[str]) -> List[str]:
        return [
            python,
            "-m",
            "twisted",
            "sockjs",
            "--port",
            f"tcp:{port}:interface=127.0.0.1:backlog=1024",
            "--factory",
            f"twisted_services.{service}",
            "--prefix",
            f"/{service}",
        ]

    return command


# The repository itself goes on PYTHONPATH: Twisted looks for plugins in twisted/plugins/
# folders on sys.path, and an editable install's import hook does not put one there.
OURS_ENV = {"PYTHONPATH": os.pathsep.join([ROOT, os.path.join(BENCH, "servers")])}


def script(interpreter: str, path: str) -> Callable[[int, Optional[str]], List[str]]:
    """A peer script from bench/servers/ that takes the port as its one argument."""
    return lambda port, service: [interpreter, os.path.join(BENCH, "servers", path), str(port)]


SERVERS: Dict[str, Server] = {
    s.name: s
    for s in [
        Server(
            "ours-cpython",
            "ours-cpython",
            ours(venv_python("cpython")),
            one_service_per_process=True,
            env=OURS_ENV,
        ),
        Server(
            "ours-pypy",
            "ours-pypy",
            ours(venv_python("pypy")),
            one_service_per_process=True,
            env=OURS_ENV,
        ),
        Server("sockjs-node", "node", script("node", "sockjs_node.js")),
        Server(
            "sockjs-tornado",
            "tornado",
            script(venv_python("tornado"), "tornado_server.py"),
        ),
        Server("aio-sockjs", "aio", script(venv_python("aio"), "aio_server.py")),
        Server(
            "autobahn-raw",
            "cpython",
            script(venv_python("cpython"), "autobahn_raw.py"),
            mode="raw",
            note="plain WebSocket echo on Twisted, no SockJS framing (the floor)",
        ),
        Server(
            "autobahn-raw-pypy",
            "pypy",
            script(venv_python("pypy"), "autobahn_raw.py"),
            mode="raw",
            note="the floor on PyPy",
        ),
    ]
}


# ---------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    key: str
    loadgen: str  # scenario name in loadgen.js
    title: str
    params: Dict[str, Any]
    raw_ok: bool = True  # can run against a plain WebSocket server
    service: str = "echo"  # the prefix it uses: /echo, /broadcast or /close


def scenarios(quick: bool) -> List[Scenario]:
    if quick:
        timing = dict(warmup_s=0.2, measure_s=0.6, wait_s=5)
        levels = [1, 10, 100]
        rate, latency_s = 200, 0.5
        idle = dict(
            ws_sessions=200,
            xhr_sessions=50,
            settle_s=0.2,
            check_sessions=20,
            warm_sessions=10,
            wait_s=5,
        )
        xhr_sessions, fanout, setup_concurrency = 10, 50, 5
        setup_warmup = dict(warmup_sessions=50, warmup_max_s=5)
    else:
        timing = dict(warmup_s=2.0, measure_s=5.0, wait_s=30)
        levels = [1, 100, 1000]
        rate, latency_s = 1000, 5.0
        idle = dict(
            ws_sessions=10_000,
            xhr_sessions=2_000,
            settle_s=2.0,
            check_sessions=100,
            warm_sessions=50,
            wait_s=30,
        )
        xhr_sessions, fanout, setup_concurrency = 100, 1000, 50
        # F and G warm up for at least 50,000 sessions (at most 60 s), whatever the
        # server: PyPy's JIT warms up in operations, not seconds (bench/inmemory.py
        # setup-server-close --rounds 6: some 6,000 set-ups in memory, more through
        # sockets).  A fresh PyPy server, at 200 sessions/s while cold, saw barely 1,000
        # in a 6 s warm-up and measured 586 sessions/server-CPU-s; after 8,000, 2884;
        # after 20,000, 3497; after 50,000, 5458.
        setup_warmup = dict(warmup_sessions=50_000, warmup_max_s=60)
    out = [
        # D first, on a freshly started server, so RSS growth is the sessions' own.
        Scenario(
            "D",
            "idle",
            f"D idle {idle['ws_sessions']} ws + {idle['xhr_sessions']} xhr_streaming",
            dict(idle, open_concurrency=200),
        ),
    ]
    for c in levels:
        window = max(4, min(200, -(-2000 // c)))  # ~2000 messages in flight, >= 4 per session
        out.append(
            Scenario(
                f"A{c}",
                "ws_echo",
                f"A ws echo c={c} (window {window})",
                dict(timing, sessions=c, window=window, rate=rate, latency_s=latency_s),
            )
        )
    out += [
        Scenario(
            "B",
            "xhr_streaming",
            f"B xhr_streaming+xhr_send c={xhr_sessions}",
            dict(timing, sessions=xhr_sessions, window=4),
            raw_ok=False,
        ),
        Scenario(
            "C",
            "xhr_polling",
            f"C xhr polling c={xhr_sessions}",
            dict(timing, sessions=xhr_sessions),
            raw_ok=False,
        ),
        Scenario(
            "F",
            "setup",
            f"F ws open+close c={setup_concurrency} (client closes)",
            dict(timing, concurrency=setup_concurrency, **setup_warmup),
        ),
        # The server closes each session as it opens (c[3000,"Go away!"], then the
        # websocket closing handshake, which the server starts).  A server that serves
        # one service per process starts afresh for it: the warm-up of F and G is
        # counted in sessions (setup_warmup) so that a JIT warms up for both.
        Scenario(
            "G",
            "setup",
            f"G ws open+close c={setup_concurrency} (server closes)",
            dict(
                timing,
                concurrency=setup_concurrency,
                server_closes=True,
                **setup_warmup,
            ),
            service="close",
        ),
        # Last: a server that serves one service per process is restarted for it.
        Scenario(
            "E",
            "broadcast",
            f"E broadcast to {fanout}",
            dict(timing, sessions=fanout, window=8),
            service="broadcast",
        ),
    ]
    return out


# ---------------------------------------------------------------------------- processes


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        want = hard if hard != resource.RLIM_INFINITY else want
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned(cpu: Optional[int], argv: List[str]) -> List[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_ready(
    proc: subprocess.Popen, port: int, mode: str, prefixes: List[str], timeout: float
) -> Optional[str]:
    """None once the server answers (the SockJS greeting on its prefixes), else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before it was ready"
        try:
            if mode == "raw":
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return None
            for prefix in prefixes:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{prefix}", timeout=2) as r:
                    body = r.read()
                if body != b"Welcome to SockJS!\n":
                    return f"GET {prefix} answered {body[:80]!r}, not the SockJS greeting"
            return None
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"not ready after {timeout:.0f}s ({last})"


@dataclass
class Running:
    proc: subprocess.Popen
    port: int
    ready_s: float
    service: Optional[str]


def start_server(
    server: Server, service: Optional[str], logf, cpu: Optional[int], timeout: float
) -> Running | str:
    port = free_port()
    argv = pinned(cpu, server.command(port, service))
    log(f"start {server.name}: {' '.join(argv)}")
    logf.write(f"--- {' '.join(argv)}\n")
    logf.flush()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=BENCH,
        env=dict(os.environ, **server.env),
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    prefixes = [f"/{service}"] if service else ["/echo", "/broadcast", "/close"]
    problem = wait_ready(proc, port, server.mode, prefixes, timeout)
    if problem:
        stop(proc)
        return problem
    return Running(proc, port, time.monotonic() - t0, service)


def run_loadgen(
    scenario: Scenario,
    server: Server,
    running: Running,
    cpu: Optional[int],
    deadline: float,
    logf,
    ws_client: str,
) -> Dict[str, Any]:
    config = dict(
        port=running.port,
        server_pid=running.proc.pid,
        clk_tck=os.sysconf("SC_CLK_TCK"),
        mode=server.mode,
        scenario=scenario.loadgen,
        params=scenario.params,
        deadline_s=deadline,
        ws_client=ws_client,
    )
    argv = pinned(cpu, ["node", os.path.join(BENCH, "loadgen.js"), json.dumps(config)])
    proc = subprocess.Popen(
        argv, cwd=BENCH, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf
    )
    try:
        out, _ = proc.communicate(timeout=deadline + 20)
    except subprocess.TimeoutExpired:
        stop(proc, 2)
        return dict(errors=1, error_samples=["load generator did not exit"], phases=[])
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        return dict(
            errors=1,
            error_samples=[f"load generator exited {proc.returncode} without a result"],
            phases=[],
        )
    if proc.returncode:
        result["errors"] = result.get("errors", 0) + 1
        result.setdefault("error_samples", []).append(f"load generator exited {proc.returncode}")
    return result


# ---------------------------------------------------------------------------- metrics


def phase(result: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    for p in result.get("phases", []):
        if p.get("name") == name:
            return p
    return None


def rates(p: Optional[Dict[str, Any]]) -> Dict[str, float]:
    """A measured phase as rates per wall second and per second of server CPU."""
    if not p or not p.get("wall_s"):
        return {}
    wall, srv, gen = p["wall_s"], p.get("server_cpu_s") or 0.0, p.get("gen_cpu_s") or 0.0
    out = {
        "per_wall_s": p["count"] / wall,
        "server_cpu_share": srv / wall,
        "loadgen_cpu_share": gen / wall,
        "other_cpu_share": max(0.0, p.get("other_cpu_s") or 0.0) / wall,
        "steal_share": (p.get("steal_s") or 0.0) / wall,
    }
    if srv > 0:
        out["per_server_cpu_s"] = p["count"] / srv
    return out


def summarize(key: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """Flat figures for one scenario result (what the table and the JSON report)."""
    s: Dict[str, Any] = {}
    if key.startswith("A"):
        s["throughput"] = rates(phase(result, "throughput"))
        lat = phase(result, "latency")
        if lat:
            s["latency"] = dict(
                rates(lat),
                rate=lat.get("rate"),
                p50_ms=lat.get("p50_ms"),
                p99_ms=lat.get("p99_ms"),
                max_ms=lat.get("max_ms"),
            )
    elif key == "D":
        for name in ("ws_open", "xhr_streaming_open"):
            p = phase(result, name)
            if p:
                s[name] = dict(
                    rates(p),
                    rss_per_session_kib=p.get("rss_per_session_kib"),
                    seconds=p.get("wall_s"),
                )
    else:
        s["throughput"] = rates(phase(result, "throughput"))
    return s


# ---------------------------------------------------------------------------- table


def human(x: Optional[float]) -> str:
    if x is None or x != x:
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x / 1e3:.1f}k"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def dig(d: Dict[str, Any], path: str) -> Optional[float]:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d if isinstance(d, (int, float)) else None


def table_rows(plan: List[Scenario]) -> List[tuple]:
    """(label, scenario key, path into the summary, kind): kind 'rate' and 'lower' get a
    ratio against the reference server, 'cpu' shows server/loadgen CPU shares."""
    rows: List[tuple] = []
    for sc in plan:
        k = sc.key
        if k.startswith("A"):
            rate = sc.params["rate"]
            rows += [
                (sc.title, None, None, "title"),
                ("  messages/s", k, "throughput.per_wall_s", "rate"),
                ("  messages/server-CPU-s", k, "throughput.per_server_cpu_s", "rate"),
                ("  CPU% server/loadgen", k, "throughput", "cpu"),
                (f"  p50 ms @ {rate} msg/s", k, "latency.p50_ms", "lower"),
                (f"  p99 ms @ {rate} msg/s", k, "latency.p99_ms", "lower"),
                ("  messages/server-CPU-s @ rate", k, "latency.per_server_cpu_s", "rate"),
                ("  CPU% server/loadgen @ rate", k, "latency", "cpu"),
            ]
        elif k == "D":
            rows += [(sc.title, None, None, "title")]
            for name, label in (("ws_open", "ws"), ("xhr_streaming_open", "xhr_streaming")):
                rows += [
                    (f"  {label} sessions opened/s", k, f"{name}.per_wall_s", "rate"),
                    (f"  {label} opened/server-CPU-s", k, f"{name}.per_server_cpu_s", "rate"),
                    (f"  {label} seconds to open all", k, f"{name}.seconds", "lower"),
                    (
                        f"  {label} server RSS KiB/session",
                        k,
                        f"{name}.rss_per_session_kib",
                        "lower",
                    ),
                    (f"  {label} CPU% server/loadgen", k, name, "cpu"),
                ]
        else:
            unit = {
                "B": "messages",
                "C": "cycles",
                "E": "deliveries",
                "F": "sessions",
                "G": "sessions",
            }[k]
            rows += [
                (sc.title, None, None, "title"),
                (f"  {unit}/s", k, "throughput.per_wall_s", "rate"),
                (f"  {unit}/server-CPU-s", k, "throughput.per_server_cpu_s", "rate"),
                ("  CPU% server/loadgen", k, "throughput", "cpu"),
            ]
    return rows


def cell(summary: Dict[str, Any], ref: Dict[str, Any], key: str, path: str, kind: str) -> str:
    if kind == "cpu":
        p = summary.get(key, {})
        for part in path.split("."):
            p = p.get(part, {}) if isinstance(p, dict) else {}
        if "server_cpu_share" not in p:
            return "-"
        return f"{100 * p['server_cpu_share']:.0f}/{100 * p['loadgen_cpu_share']:.0f}"
    v = dig(summary.get(key, {}), path)
    text = human(v)
    r = dig(ref.get(key, {}), path)
    if v is not None and r and v > 0 and r > 0:
        text += f" {v / r:.2f}x"
    return text


def disturbance(summary: Dict[str, Any], field_: str) -> List[float]:
    """Every measured phase's share of `field_` (other processes' CPU, or steal)."""
    out = []
    for figures in summary.values():
        for phase_figures in figures.values():
            if isinstance(phase_figures, dict) and field_ in phase_figures:
                out.append(phase_figures[field_])
    return out


def render_table(plan: List[Scenario], names: List[str], report: Dict[str, Any]) -> str:
    summaries = {n: report["servers"][n].get("summary", {}) for n in names}
    ref = summaries.get(REFERENCE, {})
    rows = table_rows(plan)
    label_w = max(len(r[0]) for r in rows) + 1
    col_w = max(15, *(len(n) + 1 for n in names))
    lines = [
        "".ljust(label_w) + "".join(n.rjust(col_w) for n in names),
        "".ljust(label_w)
        + "".join(report["servers"][n]["status"][: col_w - 1].rjust(col_w) for n in names),
    ]
    for label, key, path, kind in rows:
        if kind == "title":
            lines.append(label)
            continue
        cells = []
        for n in names:
            status = report["servers"][n].get("scenarios", {}).get(key, {}).get("status")
            cells.append(
                (cell(summaries[n], ref, key, path, kind) if status else "n/a").rjust(col_w)
            )
        lines.append(label.ljust(label_w) + "".join(cells))
    lines.append("Run conditions")
    for label, field_ in (
        ("  other processes CPU% (max)", "other_cpu_share"),
        ("  hypervisor steal% (max)", "steal_share"),
    ):
        cells = []
        for n in names:
            worst = max(disturbance(summaries[n], field_), default=None)
            cells.append(("-" if worst is None else f"{100 * worst:.0f}").rjust(col_w))
        lines.append(label.ljust(label_w) + "".join(cells))
    lines.append("")
    lines.append(
        f"Ratios (Nx) are against {REFERENCE}; for p50/p99, seconds and RSS lower is better. "
        "CPU% server/loadgen: share of one core used by the server (pinned to CPU 0) "
        "and by the load generator (pinned to CPU 1) during that phase."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def versions(components: List[str]) -> Dict[str, str]:
    out: Dict[str, str] = {
        "python (orchestrator)": platform.python_version(),
        "kernel": platform.release(),
    }

    def grab(label: str, argv: List[str]) -> None:
        try:
            # From /, so that no egg-info in the current directory is taken for installed.
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/")
            out[label] = result.stdout.strip()
        except OSError:
            pass

    grab("node", ["node", "--version"])
    for pkg in ("ws", "sockjs"):
        try:
            with open(os.path.join(BENCH, "node_modules", pkg, "package.json")) as f:
                out[f"npm {pkg}"] = json.load(f)["version"]
        except OSError:
            pass
    code = (
        "import sys, importlib.metadata as m\n"
        "names = ['Twisted', 'autobahn', 'tornado', 'sockjs-tornado', 'sockjs', 'aiohttp', 'sockjs-twisted']\n"
        "found = []\n"
        "for n in names:\n"
        "    try: found.append(n + '=' + m.version(n))\n"
        "    except Exception: pass\n"
        "print(sys.version.split()[0], sys.implementation.name, ' '.join(found))\n"
    )
    for c in sorted(set(components) - {"node"}):
        if os.path.exists(venv_python(c)):
            grab(f"venv {c}", [venv_python(c), "-c", code])
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="tiny counts, ~1 s per scenario (what CI runs)"
    )
    ap.add_argument("--only", help="comma-separated servers: " + ",".join(SERVERS))
    ap.add_argument("--skip", help="comma-separated servers to leave out")
    ap.add_argument("--scenarios", help="comma-separated scenario keys (D,A1,A100,...)")
    ap.add_argument(
        "--json", help="where to write the JSON report (default bench/.out/results.json)"
    )
    ap.add_argument("--no-setup", action="store_true", help="do not run setup.sh first")
    ap.add_argument(
        "--ws-client",
        choices=("lite", "ws"),
        default="lite",
        help="the load generator's WebSocket client: its own minimal one (default), or npm ws",
    )
    args = ap.parse_args(argv)

    names = list(SERVERS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
    if args.skip:
        skip = {n.strip() for n in args.skip.split(",")}
        names = [n for n in names if n not in skip]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        ap.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")
    plan = scenarios(args.quick)
    if args.scenarios:
        want = {k.strip() for k in args.scenarios.split(",")}
        plan = [s for s in plan if s.key in want]

    os.makedirs(OUT, exist_ok=True)
    components = sorted({SERVERS[n].component for n in names} | {"node"})
    setup_failed: Dict[str, str] = {}
    if not args.no_setup:
        log(f"setup: {' '.join(components)}")
        r = subprocess.run(
            ["bash", os.path.join(BENCH, "setup.sh"), *components], stdout=sys.stderr
        )
        if r.returncode:
            log(f"setup.sh exited {r.returncode}; servers that need a missing piece will fail")
    for c in components:
        marker = os.path.join(OUT, f"setup-failed-{c}")
        if os.path.exists(marker):
            with open(marker) as f:
                setup_failed[c] = f.read().strip() or "setup failed"
    if "node" in setup_failed:
        log("the load generator needs Node.js and npm ws: " + setup_failed["node"])
        return 2

    nofile = raise_nofile()
    cpus = os.sched_getaffinity(0)
    server_cpu: Optional[int] = SERVER_CPU
    load_cpu: Optional[int] = LOAD_CPU
    if not {SERVER_CPU, LOAD_CPU} <= cpus:
        log(f"CPUs {sorted(cpus)} available: running unpinned")
        server_cpu = load_cpu = None
    else:
        os.sched_setaffinity(0, {LOAD_CPU})  # keep this process off the server's core

    deadline = 40.0 if args.quick else 240.0
    report: Dict[str, Any] = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "server_cpu": server_cpu,
            "loadgen_cpu": load_cpu,
            "nofile": nofile,
            "reference": REFERENCE,
            "ws_client": args.ws_client,
            "versions": versions(components),
            "scenarios": {
                s.key: dict(title=s.title, loadgen=s.loadgen, params=s.params) for s in plan
            },
        },
        "servers": {},
    }
    failures: List[str] = []
    t_start = time.monotonic()
    for name in names:
        server = SERVERS[name]
        entry: Dict[str, Any] = {
            "mode": server.mode,
            "note": server.note,
            "scenarios": {},
            "summary": {},
        }
        report["servers"][name] = entry
        if server.component in setup_failed:
            entry["status"] = "not installed"
            entry["error"] = setup_failed[server.component]
            failures.append(f"{name}: {entry['error']}")
            continue
        logpath = os.path.join(OUT, f"{name}.log")
        with open(logpath, "w") as logf:
            entry["status"] = "ok"
            entry["ready_s"] = []
            running: Optional[Running] = None
            try:
                for sc in plan:
                    if server.mode == "raw" and not sc.raw_ok:
                        continue
                    service = sc.service if server.one_service_per_process else None
                    if running is not None and (
                        running.service != service or running.proc.poll() is not None
                    ):
                        if running.proc.poll() is not None:
                            failures.append(
                                f"{name}: server exited with status {running.proc.returncode}"
                            )
                        stop(running.proc)
                        running = None
                    if running is None:
                        started = start_server(server, service, logf, server_cpu, 60.0)
                        if isinstance(started, str):
                            entry["status"] = "failed to start"
                            entry["error"] = started
                            failures.append(f"{name}: {started} (log: {logpath})")
                            log(f"{name}: {started}")
                            break
                        running = started
                        entry["ready_s"].append(round(running.ready_s, 3))
                    log(f"{name}: {sc.title}")
                    logf.flush()
                    result = run_loadgen(
                        sc, server, running, load_cpu, deadline, logf, args.ws_client
                    )
                    if running.proc.poll() is not None:
                        result["errors"] = result.get("errors", 0) + 1
                        result.setdefault("error_samples", []).append(
                            f"server exited with status {running.proc.returncode}"
                        )
                    result["status"] = "ok" if not result.get("errors") else "errors"
                    entry["scenarios"][sc.key] = result
                    entry["summary"][sc.key] = summarize(sc.key, result)
                    if result.get("errors"):
                        entry["status"] = "errors"
                        samples = "; ".join(result.get("error_samples", [])[:3])
                        failures.append(f"{name} {sc.key}: {result['errors']} errors: {samples}")
                        log(f"{name} {sc.key}: {result['errors']} errors: {samples}")
                    time.sleep(0.2 if args.quick else 1.0)
            finally:
                if running is not None:
                    entry["server_rss_end_kib"] = rss_kib(running.proc.pid)
                    stop(running.proc)

    report["meta"]["elapsed_s"] = round(time.monotonic() - t_start, 1)
    report["failures"] = failures
    table = render_table(plan, names, report)
    report["table"] = table
    json_path = args.json or os.path.join(OUT, "results.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1, sort_keys=False)
    print(table)
    print(f"\nJSON: {json_path}  ({report['meta']['elapsed_s']}s)")
    if failures:
        print("\nFAILURES:")
        for line in failures:
            print(f"  {line}")
        return 1
    return 0


def rss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
