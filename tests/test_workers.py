"""
C{twistd sockjs --workers 2}: the real supervisor, two real workers, a real HAProxy in
front and a real redis-server behind, spoken to through HAProxy by the SockJS client over
every transport.  The options (C{--workers}, C{--redis}, C{--print-haproxy-config}) are
tested in memory, the generated configuration by C{haproxy -c}.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase, TestCase

from sockjs_twisted._tap import Options, makeService
from sockjs_twisted._workers import WorkerSupervisor, haproxyConfig, hashDepth
from sockjs_twisted.hub import RedisHub
from sockjs_twisted.testing import TRANSPORTS

from ._scaleout import (
    ROOT,
    Recorder,
    RedisServer,
    Shared,
    SharedSuite,
    Supervisor,
    abortOpened,
    answers,
    ask,
    close,
    openSession,
    pidOf,
    requireBinary,
    sleep,
    together,
    until,
)

_log = Logger()

APP = ("--factory", "tests._scaleout.WhoAmIFactory", "--prefix", "/app")


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    def test_workersNeedHAProxy(self) -> None:
        """--workers without haproxy on PATH fails at once, saying how to install it."""
        empty = self.mktemp()
        os.mkdir(empty)
        self.patch(os, "environ", {**os.environ, "PATH": empty})
        error = self.assertRaises(UsageError, parse, "--workers", "2")
        self.assertIn("apt install haproxy", str(error))

    def test_workersNeedTCPPort(self) -> None:
        """--workers takes one TCP --port."""
        for argv in [("--port", "unix:/tmp/x"), ("--listen", "1", "--listen", "2")]:
            self.assertRaises(UsageError, parse, "--workers", "2", *argv)
        self.assertRaises(UsageError, parse, "--workers", "0")

    def test_badRedisURL(self) -> None:
        """--redis takes a redis:// URL."""
        self.assertRaises(UsageError, parse, "--redis", "http://x")

    def test_backendOnlyWithPrint(self) -> None:
        """--backend goes with --print-haproxy-config, which needs one."""
        self.assertRaises(UsageError, parse, "--backend", "h:1")
        self.assertRaises(UsageError, parse, "--print-haproxy-config")
        self.assertRaises(UsageError, parse, "--print-haproxy-config", "--backend", "nope")

    def test_workersService(self) -> None:
        """--workers makes a supervisor whose workers get every other option."""
        requireBinary("haproxy")
        options = parse(
            "--port",
            "tcp:8090:interface=127.0.0.1",
            "--workers",
            "3",
            *APP,
            "--redis",
            "redis://127.0.0.1:1",
            "--heartbeat-delay",
            "2",
            "--no-websocket",
            "--allowed-origin",
            "https://a",
        )
        service = makeService(options, reactor)
        self.assertIsInstance(service, WorkerSupervisor)
        assert isinstance(service, WorkerSupervisor)
        self.assertEqual(
            (service.bind, service.publicPort, len(service.ports)), ("127.0.0.1:8090", 8090, 3)
        )
        self.assertEqual(
            sorted(options.workerArguments()),
            sorted(
                [
                    "--factory=tests._scaleout.WhoAmIFactory",
                    "--prefix=/app",
                    "--redis=redis://127.0.0.1:1",
                    "--heartbeat-delay=2.0",
                    "--no-websocket",
                    "--allowed-origin=https://a",
                ]
            ),
        )
        config = service.config()
        self.assertIn("balance uri path-only depth 2", config)
        self.assertIn("option httpchk GET /app/info", config)

    def test_workersMetricsPorts(self) -> None:
        """With --metrics-port, each worker serves its own /metrics on the port plus its index."""
        requireBinary("haproxy")
        options = parse("--port", "8092", "--workers", "2", "--metrics-port", "9100")
        reactor = ProcessReactor()
        directory = self.mktemp()
        os.makedirs(directory)
        service = makeService(options, reactor)
        assert isinstance(service, WorkerSupervisor)
        service._configDirectory = directory
        service.startService()
        ports = [args[args.index("--supervised") + 1 :] for _, args, _ in reactor.spawned]
        self.assertEqual(ports, [["--metrics-port=tcp:9100"], ["--metrics-port=tcp:9101"]])

    def test_workersWithoutRedisWarn(self) -> None:
        """--workers without --redis warns that hub messages stay inside each worker."""
        requireBinary("haproxy")
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
        self.addCleanup(globalLogPublisher.removeObserver, events.append)  # type: ignore[arg-type]
        makeService(parse("--port", "8091", "--workers", "2"), reactor)
        warnings = [e for e in events if "without --redis" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)

    def test_redisHubForTestServices(self) -> None:
        """--redis gives /broadcast a Redis hub, started and stopped with the server."""
        service = makeService(parse("--port", "tcp:0", "--redis", "redis://127.0.0.1:1"), reactor)
        hubs = [child for child in service if isinstance(child, RedisHub)]  # type: ignore[attr-defined]
        self.assertEqual([(h.host, h.port) for h in hubs], [("127.0.0.1", 1)])
        (broadcast,) = [
            e
            for e in service.endpoints  # type: ignore[attr-defined]
            if e.options.prefix == "/broadcast"
        ]
        self.assertIs(broadcast.sessions.factory.hub, hubs[0])

    def test_redisHubForFactory(self) -> None:
        """--redis sets the hub attribute of a --factory that has one."""
        options = parse("--port", "tcp:0", *APP, "--redis", "redis://127.0.0.1:2")
        makeService(options, reactor)
        hub = options["userFactory"].hub
        self.assertIsInstance(hub, RedisHub)
        self.assertEqual(hub.port, 2)

    def test_hashDepth(self) -> None:
        """The hash covers the prefix's segments and the server id."""
        self.assertEqual([hashDepth(p) for p in ["", "/", "/echo", "/a/b/"]], [1, 1, 2, 3])

    def test_printHAProxyConfig(self) -> None:
        """--print-haproxy-config prints a configuration that haproxy accepts, and exits."""
        haproxy = requireBinary("haproxy")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "twisted",
                "sockjs",
                "--port",
                "8081",
                *APP,
                "--print-haproxy-config",
                "--backend",
                "10.0.0.1:8081",
                "--backend",
                "10.0.0.2:8081",
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        config = result.stdout.decode()
        for line in [
            "bind :8081",
            "balance uri path-only depth 2",
            "hash-type consistent",
            "option http-no-delay",
            "timeout tunnel",
            "option httpchk GET /app/info",
            "server w0 10.0.0.1:8081 check",
            "server w1 10.0.0.2:8081 check",
        ]:
            self.assertIn(line, config)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(config)
        check = subprocess.run([haproxy, "-c", "-f", path], capture_output=True)
        self.assertEqual(check.returncode, 0, check.stderr)

    def test_cookieConfig(self) -> None:
        """With cookie mode, HAProxy routes by JSESSIONID and labels each server."""
        config = haproxyConfig(":1", ["a:1", "b:2"], 2, "/info", cookie=True)
        self.assertIn("cookie JSESSIONID prefix nocache", config)
        self.assertIn("server w1 b:2 check cookie w1", config)
        self.assertNotIn("balance uri", config)


class FakeProcess:
    """
    A spawned process, as the supervisor sees it: its pid and the signals it got.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []

    def signalProcess(self, number: int) -> None:
        self.signals.append(number)


class ProcessReactor(Clock):
    """
    A clock that records spawnProcess calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, list[str], FakeProcess]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], **kw: Any) -> Any:
        process = FakeProcess(1000 + len(self.spawned))
        self.spawned.append((protocol, args, process))
        protocol.makeConnection(process)
        return process

    def stop(self) -> None:
        self.stopped = True


def end(protocol: Any) -> None:
    """
    The process of C{protocol} ends (killed by a signal).
    """
    protocol.processEnded(Failure(ProcessTerminated(signal=9)))


class SupervisorTests(SynchronousTestCase):
    """
    The supervisor on a clock, with recorded processes.
    """

    def supervisor(self, count: int = 2) -> tuple[WorkerSupervisor, ProcessReactor]:
        reactor = ProcessReactor()
        directory = self.mktemp()
        os.makedirs(directory)
        supervisor = WorkerSupervisor(
            reactor, count, "127.0.0.1:9", 9, ["--x"], 2, "/info", configDirectory=directory
        )
        supervisor.startService()
        return supervisor, reactor

    def workers(self, reactor: ProcessReactor) -> list[tuple[Any, list[str], FakeProcess]]:
        return [s for s in reactor.spawned if "sockjs" in s[1]]

    def test_startsWorkersThenHAProxy(self) -> None:
        """Workers start first; HAProxy once every worker says it listens."""
        supervisor, reactor = self.supervisor()
        workers = self.workers(reactor)
        self.assertEqual(len(reactor.spawned), 2)
        for index, (protocol, args, _) in enumerate(workers):
            self.assertIn(f"tcp:{supervisor.ports[index]}:interface=127.0.0.1", args)
            self.assertEqual(args[-2:], ["--supervised", "--x"])
            protocol.childDataReceived(
                1, b"... SockJSSite starting on %d\n" % supervisor.ports[index]
            )
        self.assertEqual(len(reactor.spawned), 3)
        self.assertIn("-db", reactor.spawned[2][1])

    def test_haproxyAfterDelay(self) -> None:
        """HAProxy starts after proxyDelay seconds even if a worker never says it listens."""
        supervisor, reactor = self.supervisor()
        reactor.advance(supervisor.proxyDelay)
        self.assertEqual(len(reactor.spawned), 3)

    def test_restartBackoff(self) -> None:
        """A worker that keeps dying young is restarted after 0.1 s, doubling, up to 10 s."""
        supervisor, reactor = self.supervisor(count=1)
        supervisor.proxyDelay = 1000
        delays = []
        for _ in range(10):
            before = len(self.workers(reactor))
            end(self.workers(reactor)[-1][0])
            (restart,) = [c for c in reactor.getDelayedCalls() if c.func != supervisor._spawnProxy]  # type: ignore[attr-defined]
            delays.append(round(restart.getTime() - reactor.seconds(), 3))
            reactor.advance(delays[-1])
            self.assertEqual(len(self.workers(reactor)), before + 1)
        self.assertEqual(delays, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])

    def test_backoffResetsAfterALongLife(self) -> None:
        """A worker that lived 10 s or more is restarted after 0.1 s again."""
        supervisor, reactor = self.supervisor(count=1)
        for _ in range(3):
            end(self.workers(reactor)[-1][0])
            reactor.advance(10)
        reactor.advance(11)
        before = len(self.workers(reactor))
        end(self.workers(reactor)[-1][0])
        reactor.advance(0.1)
        self.assertEqual(len(self.workers(reactor)), before + 1)

    def test_stop(self) -> None:
        """Stopping soft-stops HAProxy, TERMs the workers, and waits for every process."""
        supervisor, reactor = self.supervisor()
        reactor.advance(supervisor.proxyDelay)
        (w0, _, p0), (w1, _, p1), (proxy, _, pp) = reactor.spawned
        d = supervisor.stopService()
        self.assertEqual((pp.signals, p0.signals, p1.signals), ([10], [15], [15]))
        for protocol in (w0, proxy):
            end(protocol)
        self.assertNoResult(d)
        end(w1)
        self.successResultOf(d)
        reactor.advance(60)
        self.assertEqual(len(reactor.spawned), 3, "no restart while stopping")
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_stopKillsLaggards(self) -> None:
        """A process still running stopTimeout seconds after the stop gets SIGKILL."""
        supervisor, reactor = self.supervisor(count=1)
        reactor.advance(supervisor.proxyDelay)
        (worker, _, process), (proxy, _, _) = reactor.spawned
        d = supervisor.stopService()
        end(proxy)
        reactor.advance(supervisor.stopTimeout)
        self.assertEqual(process.signals, [15, 9])
        end(worker)
        self.successResultOf(d)


class _Cluster:
    """
    A redis-server, and a supervisor of two workers using it.
    """

    def __init__(self) -> None:
        self.redis = RedisServer()
        try:
            self.supervisor = Supervisor(
                2, *APP, "--redis", self.redis.url, "--heartbeat-delay", "5"
            )
            self.supervisor.waitReady("/app/info")
        except BaseException:
            self.redis.stop()
            raise

    def stop(self) -> None:
        self.supervisor.stop()
        self.redis.stop()


_cluster = Shared(_Cluster, _Cluster.stop)


class WorkersTests(TestCase):
    """
    One supervisor with two workers (and one redis-server) for the whole class: the
    tests leave both workers running.
    """

    timeout = 120

    def setUp(self) -> None:
        cluster: _Cluster = _cluster.get(self)
        self.supervisor = cluster.supervisor
        self.addCleanup(lambda: Deferred.fromCoroutine(abortOpened()))

    @property
    def base(self) -> str:
        return self.supervisor.base + "/app"

    def workerPids(self) -> set[int]:
        return {pid for pid, _ in self.supervisor.readyWorkers().values()}

    async def sessionsOn(
        self, count: int, transport: str = "websocket"
    ) -> dict[int, list[Recorder]]:
        """
        Open sessions until each worker has C{count}; close the extra ones.
        """
        byPid: dict[int, list[Recorder]] = {pid: [] for pid in self.workerPids()}
        spare = []
        while any(len(sessions) < count for sessions in byPid.values()):
            protocol = await openSession(self.base, transport)
            pid = await pidOf(protocol)
            if len(byPid[pid]) < count:
                byPid[pid].append(protocol)
            else:
                spare.append(protocol)
        for protocol in spare:
            await close(protocol)
        return byPid

    async def test_200SessionsEveryTransport(self) -> None:
        """
        200 sessions over every transport through HAProxy: every request of each lands
        on its worker (no 404 on a send, no session lost), and both workers carry some.
        """
        results: dict[str, list[int]] = {name: [] for name in TRANSPORTS}
        failures: list[str] = []

        async def one(transport: str, n: int) -> None:
            try:
                protocol = await openSession(self.base, transport)
                pid = await pidOf(protocol)
                for k in range(3):
                    message = b"%s %d %d" % (transport.encode(), n, k)
                    answer = await ask(protocol, message)
                    if answer != message:
                        failures.append(f"{transport} {n}: {answer!r} for {message!r}")
                await close(protocol)
                if protocol.lost is None or not protocol.lost.check(ConnectionDone):
                    failures.append(f"{transport} {n}: ended with {protocol.lost}")
                results[transport].append(pid)
            except Exception as e:
                failures.append(f"{transport} {n}: {e}")

        jobs = [(t, n) for n in range(67) for t in TRANSPORTS][:200]
        for start in range(0, len(jobs), 50):
            await together([one(t, n) for t, n in jobs[start : start + 50]])
        self.assertEqual(failures, [])
        split = {t: {pid: pids.count(pid) for pid in set(pids)} for t, pids in results.items()}
        _log.info(
            "200 sessions through HAProxy, by transport and worker pid: {split}", split=split
        )
        allPids = [pid for pids in results.values() for pid in pids]
        self.assertEqual(len(allPids), 200)
        self.assertEqual(set(allPids), self.workerPids())

    async def test_broadcastAcrossWorkers(self) -> None:
        """
        A publish from a session on one worker reaches the sessions on the other (through
        Redis), each publisher's messages in order.
        """
        byPid = await self.sessionsOn(2)
        everyone = [p for sessions in byPid.values() for p in sessions]
        publishers = [sessions[0] for sessions in byPid.values()]
        for protocol in everyone:
            protocol.received.clear()
        for n in range(20):
            for index, publisher in enumerate(publishers):
                assert publisher.transport is not None
                publisher.transport.write(b"!pub %d:%d" % (index, n))
        expected = 20 * len(publishers)
        await until(
            reactor,
            lambda: all(len(p.received) >= expected for p in everyone),
            20,
            "every broadcast everywhere",
        )
        for protocol in everyone:
            for index in range(len(publishers)):
                mine = [m for m in protocol.received if m.startswith(b"%d:" % index)]
                self.assertEqual(mine, [b"%d:%d" % (index, n) for n in range(20)])
        await together([close(p) for p in everyone])

    async def test_redisRestart(self) -> None:
        """
        Redis restarted while a session on one worker keeps broadcasting: every session
        stays open, broadcasts reach the other worker again within seconds, in order;
        the messages lost are counted and reported.
        """
        cluster: _Cluster = _cluster.get(self)
        byPid = await self.sessionsOn(2)
        (pidA, onA), (pidB, onB) = sorted(byPid.items())
        publisher = onA[0]
        assert publisher.transport is not None
        for protocol in [*onA, *onB]:
            protocol.received.clear()
        sent = 0

        async def publish(seconds: float) -> None:
            nonlocal sent
            end = reactor.seconds() + seconds
            while reactor.seconds() < end:
                publisher.transport.write(b"!pub r:%d" % sent)  # type: ignore[union-attr]
                sent += 1
                await sleep(reactor, 0.02)

        def numbers(protocol: Recorder) -> list[int]:
            return [int(m[2:]) for m in protocol.received if m.startswith(b"r:")]

        await publish(0.5)
        cluster.redis.stop()
        await publish(1.0)
        cluster.redis.start()
        restarted, before = reactor.seconds(), sent
        while not all(numbers(p) and numbers(p)[-1] >= before for p in onB):
            await publish(0.1)
            self.assertLess(reactor.seconds() - restarted, 20, "broadcasts did not resume")
        resumed = reactor.seconds() - restarted
        await publish(0.5)
        last = sent - 1
        await until(
            reactor, lambda: all(numbers(p)[-1:] == [last] for p in [*onA, *onB]), 10, "the end"
        )
        for protocol in [*onA, *onB]:
            self.assertIsNone(protocol.lost)
            got = numbers(protocol)
            self.assertEqual(got, sorted(set(got)))
        self.assertEqual([numbers(p) for p in onA], [list(range(sent))] * len(onA))
        lost = [sent - len(numbers(p)) for p in onB]
        _log.info(
            "Redis restart under --workers 2: {sent} broadcasts, lost on the other worker's "
            "sessions: {lost}; delivery there resumed {resumed:.2f} s after Redis restarted",
            sent=sent,
            lost=lost,
            resumed=resumed,
        )
        self.assertLess(resumed, 15)
        await together([close(p) for p in [*onA, *onB]])

    async def test_streamingLatency(self) -> None:
        """
        Through HAProxy (http-no-delay), xhr-streaming delivers each message at once: a
        round trip (xhr_send, then the frame on the stream) well within 100 ms.
        """
        protocol = await openSession(self.base, "xhr-streaming")
        times = []
        for n in range(20):
            start = reactor.seconds()
            self.assertEqual(await ask(protocol, b"%d" % n), b"%d" % n)
            times.append(reactor.seconds() - start)
        await close(protocol)
        times.sort()
        _log.info(
            "xhr-streaming round trips through HAProxy: median {median:.1f} ms, max {max:.1f} ms",
            median=times[10] * 1000,
            max=times[-1] * 1000,
        )
        # A proxy holding frames back (Nagle, buffering) adds 40-200 ms to every one.
        self.assertLess(times[10], 0.1)

    async def test_workerKilled(self) -> None:
        """
        SIGKILL of a worker ends only its sessions: the other worker's sessions keep
        echoing with nothing lost, new sessions work at once, and the supervisor brings
        the worker back within seconds.
        """
        byPid = await self.sessionsOn(3)
        victim, survivor = sorted(byPid)
        victimIndex = [
            index for index, (pid, _) in self.supervisor.readyWorkers().items() if pid == victim
        ][0]
        killedAt = reactor.seconds()
        os.kill(victim, signal.SIGKILL)
        await until(
            reactor,
            lambda: all(p.lost is not None for p in byPid[victim]),
            15,
            "the killed worker's sessions to end",
        )
        self.assertTrue(all(p.lost is None for p in byPid[survivor]))
        # New sessions, at once (HAProxy redispatches while its check catches up).
        fresh = await together([openSession(self.base, "websocket") for _ in range(10)])
        freshPids = await together([pidOf(p) for p in fresh])
        self.assertNotIn(victim, freshPids)

        async def keepsEchoing(protocol: Recorder) -> list[bytes]:
            return [await ask(protocol, b"after %d" % n) for n in range(10)]

        echoes = await together([keepsEchoing(p) for p in byPid[survivor]])
        self.assertEqual(echoes, [[b"after %d" % n for n in range(10)]] * 3)

        def back() -> bool:
            pid, port = self.supervisor.readyWorkers().get(victimIndex, (victim, 0))
            return pid != victim and answers(f"http://127.0.0.1:{port}/app/info")

        await until(reactor, back, 30, "the worker back")
        backAfter = reactor.seconds() - killedAt
        _log.info("A killed worker was back (listening) {t:.2f} s after SIGKILL", t=backAfter)
        self.assertLess(backAfter, 15)
        # And HAProxy sends sessions to it again.
        newPid = self.supervisor.readyWorkers()[victimIndex][0]
        await until(reactor, lambda: newPid in self.workerPids(), 5, "the new pid")
        found = False
        for _ in range(60):
            protocol = await openSession(self.base, "websocket")
            found = found or await pidOf(protocol) == newPid
            await close(protocol)
            if found:
                break
            await sleep(reactor, 0.05)
        self.assertTrue(found, "no session reached the restarted worker")
        await together([close(p) for p in [*fresh, *byPid[survivor]]])


def _running(pid: int) -> bool:
    """
    Is process C{pid} alive (a zombie waiting for its new parent to reap it is not)?
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class GracefulStopTests(TestCase):
    timeout = 90

    async def test_sigterm(self) -> None:
        """
        SIGTERM: HAProxy stops accepting, every session is closed with 1001, every
        process exits.
        """
        supervisor = Supervisor(2, *APP)
        self.addCleanup(supervisor.stop)
        self.addCleanup(lambda: Deferred.fromCoroutine(abortOpened()))
        supervisor.waitReady("/app/info")
        sessions = [await openSession(supervisor.base + "/app", "websocket") for _ in range(8)]
        pids = {await pidOf(p) for p in sessions}
        self.assertEqual(len(pids), 2)
        supervisor.process.send_signal(signal.SIGTERM)
        await until(reactor, lambda: all(p.lost is not None for p in sessions), 20, "closes")
        codes = {p.transport.closeCode for p in sessions}  # type: ignore[union-attr]
        self.assertEqual(codes, {1001})
        await until(reactor, lambda: supervisor.process.poll() is not None, 30, "the exit")
        # twist ends by the signal that stopped it, once it has stopped cleanly.
        self.assertIn(supervisor.process.returncode, (0, -signal.SIGTERM))
        self.assertFalse(answers(supervisor.base + "/app/info"))
        for pid in pids:
            self.assertFalse(_running(pid), f"worker {pid} still running")
        # The supervisor stopped them (not only their standard input closing).
        log = supervisor.log()
        for index in (0, 1):
            self.assertIn(f"[worker {index}] ", log)
            self.assertRegex(log, rf"\[worker {index}\] .*Received SIGTERM")
        self.assertIn("[haproxy]", log)

    async def test_supervisorKilled(self) -> None:
        """Workers and HAProxy whose supervisor was killed (SIGKILL) exit by themselves."""
        supervisor = Supervisor(2, *APP)
        self.addCleanup(supervisor.stop)
        supervisor.waitReady("/app/info")
        pids = [pid for pid, _ in supervisor.readyWorkers().values()]
        match = re.search(r"HAProxy \(pid (\d+)\)", supervisor.log())
        assert match is not None
        pids.append(int(match.group(1)))
        os.kill(supervisor.process.pid, signal.SIGKILL)
        await until(reactor, lambda: not any(map(_running, pids)), 20, "the workers to exit")


def testSuite() -> SharedSuite:
    """
    This module's tests, for trial: L{WorkersTests} share one cluster.
    """
    loader = TestLoader()
    return SharedSuite(
        [
            loader.loadClass(OptionsTests),
            loader.loadClass(SupervisorTests),
            loader.loadClass(WorkersTests),
            loader.loadClass(GracefulStopTests),
        ],
        [_cluster],
    )
