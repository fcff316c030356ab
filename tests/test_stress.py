"""
The stress scripts in a short mode, run as subprocesses the way a person runs them:
C{stress/slow_reader.py} (8 MiB per case) and C{stress/soak.py} (1000 sessions, a 1 second
disconnect delay).  They assert memory and correctness, never timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from stress._client import Deadline, MiB, ServerProcess, connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSS_LIMIT = 32 * MiB


def _requireProc() -> None:
    if not os.path.exists("/proc/self/status"):
        raise SkipTest("the stress scripts sample the server in /proc (Linux)")


class ScriptTestCase(SynchronousTestCase):
    def runScript(self, script: str, *args: str) -> tuple[dict[str, Any], str]:
        """
        Run C{stress/<script>} with C{args}; its JSON results and its output.
        """
        _requireProc()
        out = os.path.abspath(self.mktemp() + ".json")
        process = subprocess.run(
            [sys.executable, os.path.join("stress", script), *args, "--json", out],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
        output = process.stdout.decode("utf-8", "replace")
        self.assertTrue(os.path.exists(out), output)
        with open(out) as f:
            results: dict[str, Any] = json.load(f)
        self.assertEqual(process.returncode, 0 if results["ok"] else 1, output)
        return results, output

    def assertChecksPass(self, result: dict[str, Any], output: str) -> None:
        failed = [check for check, passed in result["checks"].items() if not passed]
        self.assertEqual(failed, [], output)
        self.assertTrue(result["ok"], output)


class SlowReaderTests(ScriptTestCase):
    def slowReader(self, case: str) -> tuple[dict[str, Any], str]:
        results, output = self.runScript(
            "slow_reader.py",
            "--megabytes",
            "8",
            "--transport",
            case,
            "--settle",
            "0.5",
            "--hold",
            "0.5",
            # 8 MiB could fit in the kernel's socket buffers and a 4 MiB queue: with a
            # 512 KiB queue the slow broadcast member overflows for certain.
            "--max-queue-size",
            "0.5",
            "--timeout",
            "60",
        )
        [result] = results["cases"]
        self.assertEqual(result["case"], case)
        return result, output

    def assertPushedWhole(self, case: str) -> None:
        result, output = self.slowReader(case)
        self.assertChecksPass(result, output)
        count = result["messages"]
        self.assertEqual(count, 128)
        self.assertTrue(result["stalled"], output)
        self.assertLess(result["stalled_at"], count, output)
        self.assertLessEqual(result["rss_delta"], RSS_LIMIT, output)
        self.assertEqual((result["received"], result["error"]), (count, None), output)

    def test_websocket(self) -> None:
        """A websocket client that stops reading pauses a pushing producer; the 8 MiB arrive whole and in order when it reads again, the server's RSS rising less than 32 MiB."""
        self.assertPushedWhole("websocket")

    def test_xhrStreaming(self) -> None:
        """An xhr_streaming client that stops reading pauses a pushing producer; the 8 MiB arrive whole and in order when it reads again, the server's RSS rising less than 32 MiB."""
        self.assertPushedWhole("xhr_streaming")

    def test_eventSource(self) -> None:
        """An eventsource client that stops reading pauses a pushing producer; the 8 MiB arrive whole and in order when it reads again, the server's RSS rising less than 32 MiB."""
        self.assertPushedWhole("eventsource")

    def assertBroadcastSurvives(self, case: str) -> None:
        result, output = self.slowReader(case)
        self.assertChecksPass(result, output)
        count = result["messages"]
        self.assertEqual(result["fast_received"], count, output)
        self.assertEqual(result["bystander_received"], count, output)
        self.assertEqual(result["close"][0], 1013, output)
        self.assertIsNone(result["error"], output)
        self.assertLess(0, result["received"])
        self.assertLess(result["received"], count)
        self.assertLessEqual(result["rss_delta"], RSS_LIMIT, output)

    def test_broadcast(self) -> None:
        """Through the standard /broadcast, a member that does not read is closed with 1013 once its queue passes max_queue_size, finds an in-order prefix then c[1013] when it reads, and the sender and a bystander get all 8 MiB."""
        self.assertBroadcastSurvives("broadcast")

    def test_broadcastStress(self) -> None:
        """Through a broadcast that iterates over a copy of its members, a member that does not read is closed with 1013 once its queue passes max_queue_size, finds an in-order prefix then c[1013], and nobody else is affected."""
        self.assertBroadcastSurvives("broadcast_stress")


class SoakTests(ScriptTestCase):
    def test_soak(self) -> None:
        """1000 sessions opened and abandoned (xhr polling, websockets dropped, xhr_streaming aborted) are all reaped after the disconnect delay: live protocols and file descriptors back to the baseline, the control session's echoes all back once and in order."""
        result, output = self.runScript(
            "soak.py", "--sessions", "1000", "--disconnect-delay", "1", "--margin", "10"
        )
        self.assertChecksPass(result, output)
        self.assertEqual(result["open_failures"], 0, output)
        self.assertEqual(result["opened_protocols"], 1001, output)
        self.assertEqual(result["live_after"], 1, output)
        self.assertLessEqual(result["fds_after"], result["fds_baseline"] + 8, output)
        self.assertEqual(sum(result["lost"].values()), 1000, output)
        control = result["control"]
        self.assertEqual(
            (control["lost"], control["duplicated_or_reordered"], control["errors"]),
            (0, 0, []),
            output,
        )
        self.assertEqual(control["received"], control["sent"], output)


class LargeFlushTests(SynchronousTestCase):
    """
    The reduced form of what a slow reader meets when it reads again: a queue of more than
    C{max_message_size} (1 MiB by default) flushed to a websocket in one go.
    """

    def test_websocketFlushOverMaxMessageSize(self) -> None:
        """Two 512 KiB messages written in one reactor turn (/amplify ["19","19"]) both reach a websocket client: max_message_size limits what clients send, not what they are sent."""
        _requireProc()
        server = ServerProcess()
        self.addCleanup(server.stop)
        ws = connect("websocket", server.port, "/amplify")
        self.addCleanup(ws.close)
        ws.send(["19", "19"])
        messages: list[Any] = []
        deadline = Deadline(5)
        for _ in range(1000):
            if len(messages) == 2:
                break
            event = ws.next(deadline)
            if event is None:
                break
            if event[0] != "h":
                messages.append(event)
        self.assertEqual(
            [(kind, len(value)) for kind, value in messages],
            [("m", 2**19), ("m", 2**19)],
            "".join(server.log),
        )
