"""
What the tests that start child processes share: the C{python -m twisted sockjs}
command line, the environment that runs this checkout's code, reading a child's log and
stopping a child by its PID.

It imports no reactor, so that any test module may use it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Mapping, Optional, Sequence, Union

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sockjsCommand(port: str, *args: str) -> list[str]:
    """
    The command that runs C{twistd sockjs} on the endpoint C{port} with C{args}, its log
    as text on standard output.
    """
    return [sys.executable, "-m", "twisted", "--log-format=text", "sockjs", "--port", port, *args]


def childEnvironment(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """
    C{env} (this process's environment by default) with this checkout first on
    C{PYTHONPATH}, so that a child runs the code these tests import, installed or not.
    """
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join(
        [ROOT, *filter(None, [environment.get("PYTHONPATH")])]
    )
    return environment


def readLog(path: Union[str, os.PathLike[str]]) -> str:
    """
    A child's log file as text (bytes that are not UTF-8 replaced).
    """
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def stopProcess(
    process: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    timeout: float = 20.0,
    killTimeout: Optional[float] = 10.0,
) -> None:
    """
    Stop a child by its PID: C{sig}, then SIGKILL after C{timeout} seconds (and wait
    C{killTimeout} seconds for it to end, or for ever if L{None}).
    """
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(killTimeout)


def runForOutput(
    command: Sequence[str], cwd: str, env: Mapping[str, str], timeout: float = 60
) -> tuple[int, str]:
    """
    Run C{command} to its end: its exit code, and its standard output and error as text.
    """
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )
    return result.returncode, result.stdout.decode("utf-8", "replace")
