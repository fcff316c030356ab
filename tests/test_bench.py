"""
The side-by-side benchmark still works: `bash bench/run --quick` runs every server through
every scenario and checks the answers (never the speed).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from ._ci import inCI, skipIfQuick

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchTests(SynchronousTestCase):
    def test_quickRun(self) -> None:
        """bench/run --quick installs what it needs, runs every server, and finds no wrong answer."""
        skipIfQuick("the benchmark")
        if not inCI() and os.environ.get("SOCKJS_BENCH") != "1":
            raise SkipTest(
                "the quick benchmark installs its peers (npm, PyPy, tornado, aiohttp) and "
                "takes minutes: CI runs it; set SOCKJS_BENCH=1 to run it here"
            )
        with tempfile.TemporaryDirectory() as temp:
            report = os.path.join(temp, "bench.json")
            result = subprocess.run(
                ["bash", os.path.join(ROOT, "bench", "run"), "--quick", "--json", report],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=900,
            )
            output = result.stdout.decode("utf-8", "replace")
            self.assertEqual(result.returncode, 0, output[-6000:])
            with open(report) as f:
                data = json.load(f)
        self.assertEqual(data["failures"], [], output[-3000:])
        self.assertIn("ours-cpython", data["servers"])
        self.assertIn("sockjs-node", data["servers"])
