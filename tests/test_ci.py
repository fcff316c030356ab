"""
What CI means (L{tests._ci}), and the check of skips that C{.ci/run} makes under CI
(C{.ci/skips.py} against C{.ci/allowed-skips}).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from types import ModuleType

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from . import _ci
from .test_browser import REFUSALS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPS_PY = os.path.join(ROOT, ".ci", "skips.py")
ALLOWED = os.path.join(ROOT, ".ci", "allowed-skips")


def _skipsModule() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ci_skips", SKIPS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


skips = _skipsModule()

LOG = """\
tests.test_x
  XTests
    test_a ...                                                             [OK]

===============================================================================
[SKIPPED]
hixie-76 is not supported: Autobahn has no hixie-76

tests.test_protocol.WebsocketTests.test_haproxy
===============================================================================
[SKIPPED]
no haproxy on PATH: install it
(Debian package haproxy)

tests.test_scale.HAProxyTests.test_a
tests.test_scale.HAProxyTests.test_b
-------------------------------------------------------------------------------
Ran 4 tests in 0.1s

PASSED (skips=3, successes=1)
"""


class InCITests(SynchronousTestCase):
    def test_values(self) -> None:
        """CI means CI set to a non-empty value other than 0, false, no or off, in any case."""
        for value in ["true", "1", "yes", "TRUE", "True", "on", "github"]:
            self.assertTrue(_ci.inCI({"CI": value}), value)
        for value in ["", " ", "0", "false", "False", "no", "off"]:
            self.assertFalse(_ci.inCI({"CI": value}), value)
        self.assertFalse(_ci.inCI({}))

    def test_missingSkipsOutsideCI(self) -> None:
        """Outside CI a missing tool is a skip that carries its reason."""
        self.patch(_ci, "inCI", lambda environ=None: False)
        e = self.assertRaises(SkipTest, _ci.missing, self, "no frobnicator")
        self.assertEqual(str(e), "no frobnicator")

    def test_missingFailsInCI(self) -> None:
        """Under CI a missing tool is a failure that carries its reason."""
        self.patch(_ci, "inCI", lambda environ=None: True)
        e = self.assertRaises(self.failureException, _ci.missing, self, "no frobnicator")
        self.assertIn("no frobnicator", str(e))


class SkipCheckTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """Every skipped test of a trial log is found, with its whole reason."""
        self.assertEqual(
            skips.parseSkips(LOG.splitlines(True)),
            [
                (
                    "tests.test_protocol.WebsocketTests.test_haproxy",
                    "hixie-76 is not supported: Autobahn has no hixie-76",
                ),
                (
                    "tests.test_scale.HAProxyTests.test_a",
                    "no haproxy on PATH: install it (Debian package haproxy)",
                ),
                (
                    "tests.test_scale.HAProxyTests.test_b",
                    "no haproxy on PATH: install it (Debian package haproxy)",
                ),
            ],
        )

    def test_unexpected(self) -> None:
        """A skip is expected only if one rule matches both its test and its reason."""
        with open(ALLOWED) as f:
            rules = skips.parseAllowed(f)
        found = skips.parseSkips(LOG.splitlines(True))
        self.assertEqual(
            [test for test, _ in skips.unexpected(found, rules)],
            ["tests.test_scale.HAProxyTests.test_a", "tests.test_scale.HAProxyTests.test_b"],
        )
        otherReason = [("tests.test_protocol.WebsocketTests.test_haproxy", "no Autobahn")]
        self.assertEqual(skips.unexpected(otherReason, rules), otherReason)

    def test_script(self) -> None:
        """.ci/skips.py prints each unexpected skip and exits 1; with none it exits 0."""
        log = self.mktemp()
        with open(log, "w") as f:
            f.write(LOG)
        result = subprocess.run(
            [sys.executable, SKIPS_PY, log], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stdout.decode().splitlines(),
            [
                "unexpected skip: tests.test_scale.HAProxyTests.test_a: no haproxy on PATH: "
                "install it (Debian package haproxy)",
                "unexpected skip: tests.test_scale.HAProxyTests.test_b: no haproxy on PATH: "
                "install it (Debian package haproxy)",
            ],
        )
        with open(log, "w") as f:
            f.write(LOG.split("===")[0] + "PASSED (successes=1)\n")
        result = subprocess.run([sys.executable, SKIPS_PY, log], stdout=subprocess.PIPE)
        self.assertEqual((result.returncode, result.stdout), (0, b""))

    def test_runRunsTheReadmeCommand(self) -> None:
        """.ci/run runs the README's test command exactly as the README writes it."""
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        [command] = re.findall(r"^bash \.ci/setup && .*$", readme, re.M)
        with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
            run = f.read()
        self.assertIn("\n" + command + " 2>&1 | tee", run)

    def test_browserRefusalsListed(self) -> None:
        """Each (transport, origin) the browser test may skip has its own rule, and no more."""
        with open(ALLOWED) as f:
            rules = skips.parseAllowed(f)
        browserRules = {test for test, _ in rules if test.startswith("tests.test_browser.")}
        classes = {"same-origin": "SameOriginTests", "cross-origin": "CrossOriginTests"}
        expected = {
            f"tests.test_browser.{classes[origin]}.test_{transport.replace('-', '_')}"
            for transport, origin in REFUSALS
        }
        self.assertEqual(browserRules, expected)
