"""
The server on PyPy: the core suites, run under the PyPy venv that .ci/setup makes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from ._ci import missing, skipIfQuick

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPY = os.path.join(ROOT, ".venv-pypy", "bin", "python")
MODULES = [
    "tests.test_framing",
    "tests.test_session",
    "tests.test_deadline",
    "tests.test_protocol",
    "tests.test_hostile",
    "tests.test_leanweb",
    "tests.test_httpfast",
    "tests.test_options",
    # Not test_tap's process tests: they run .venv's (CPython) twistd and pip.
    "tests.test_tap.OptionsTests",
    "tests.test_tap.ServiceTests",
    "tests.test_integration",
    "tests.test_hub",
    "tests.test_writethrough",
]


class PyPyTests(SynchronousTestCase):
    def test_coreSuitesPass(self) -> None:
        """Framing, sessions, conformance, hostile input, integration and the hub pass on PyPy."""
        skipIfQuick("the suites on PyPy")
        if not os.path.exists(PYPY):
            missing(self, f"no PyPy venv at {PYPY}: run `bash .ci/setup` (needs Debian's pypy3)")
        # Not this (CPython) process's PYTHONPATH, which `trial -j` sets to CPython's
        # sys.path: PyPy would import CPython's site-packages.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        implementation = subprocess.run(
            [PYPY, "-c", "import platform; print(platform.python_implementation())"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertEqual(
            implementation.stdout.decode("utf-8", "replace").strip(),
            "PyPy",
            f"{PYPY} is not a PyPy interpreter",
        )
        with tempfile.TemporaryDirectory() as temp:
            result = subprocess.run(
                [
                    PYPY,
                    "-m",
                    "twisted.trial",
                    "--temp-directory",
                    os.path.join(temp, "t"),
                    *MODULES,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        output = result.stdout.decode("utf-8", "replace")
        summary = [line for line in output.splitlines() if line.startswith(("PASSED", "FAILED"))]
        self.assertEqual(result.returncode, 0, output[-5000:])
        self.assertTrue(summary and summary[-1].startswith("PASSED"), output[-2000:])
