"""
The documentation builds, with every Sphinx warning an error.
"""

from __future__ import annotations

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DocsTests(SynchronousTestCase):
    def test_buildsWithoutWarnings(self) -> None:
        """`bash .ci/docs` (sphinx -W -n) succeeds."""
        result = subprocess.run(
            ["bash", os.path.join(ROOT, ".ci", "docs")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stdout.decode("utf-8", "replace")[-5000:])
