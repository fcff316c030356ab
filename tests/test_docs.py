"""
The documentation builds, with every Sphinx warning an error; and every command line it
documents runs as written, from the root of the checkout, with no venv activated (and this
checkout on C{PYTHONPATH}, so that it is this checkout's code that runs).

Which lines are documented commands is read from the documents themselves
(L{documentedCommands}), so that a new page or a new line is covered without a change
here:

- README.md and examples/README.md: every line of a fenced C{sh}, C{shell}, C{bash} or
  C{console} block, and every inline code span that starts with C{.venv/bin/} or
  C{bash };
- docs/*.rst: every C{$ } or C{# } line of a C{code-block:: console} (and C{sh}, C{shell},
  C{bash}) block, or of a literal block (C{::}) with C{$ } prompts, with its expected
  output, and every inline literal that starts with C{.venv/bin/} or C{bash }.

Each command is then one of:

- a server (C{twistd -n ...}, C{-m examples.<name>.server}): started with its ports moved
  to free loopback ports (a bare C{8081} becomes C{tcp:PORT:interface=127.0.0.1}, a port in
  a description or a URL becomes C{PORT}; nothing else changes), checked to answer HTTP
  (and each C{http://localhost:PORT/...} URL its line names, with 200), then stopped by its
  process group id.  The commands after it in the same block (C{curl}, a client) run
  against it, and their output must be what the block shows;
- a command: run, and it must exit 0;
- not run here, for the reason L{NOT_RUN} (each entry must still be documented) or
  L{NOT_RUN_PREFIXES} gives;
- a third-party program (L{THIRD_PARTY}: systemctl, haproxy, ...), not run.

A command written so that it cannot run from a fresh clone (a bare C{twistd}, C{python},
C{pip}) fails: write it C{.venv/bin/twistd}, C{.venv/bin/python}.
"""

from __future__ import annotations

import glob
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "examples/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.rst"))
)
SHELL_LANGUAGES = {"sh", "shell", "bash", "console"}
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0

_SETUP = (
    "it sets up .venv, which these tests run in: .ci/run runs the README's commands from a "
    "fresh clone, and tests.test_tap.InstalledTwistdTests checks the installed twistd"
)
_BENCH = "the benchmark, minutes long: tests.test_bench runs `bash bench/run --quick`"
_PLACEHOLDER = "myapp stands for your own package"

# Documented commands these tests do not run, and why.  Every entry must be documented.
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install .": _SETUP,
    "python3 -m venv .venv": _SETUP,
    ".venv/bin/pip install .": _SETUP,
    ".venv/bin/pip install '.[metrics]'": _SETUP,
    "bash .ci/setup": _SETUP,
    "bash .ci/setup && .venv/bin/python -m twisted.trial tests": (
        "the test command, which runs these tests: .ci/run runs it as written"
    ),
    "SOCKJS_QUICK=1 .venv/bin/python -m twisted.trial tests": (
        "the fast subset of the test suite, which runs these tests"
    ),
    "bash .ci/docs": "DocsTests.test_buildsWithoutWarnings runs it",
    ".venv/bin/python stress/slow_reader.py": (
        "64 MiB per case: tests.test_stress runs it in a short mode"
    ),
    ".venv/bin/python stress/soak.py": (
        "10,000 sessions: tests.test_stress runs it in a short mode"
    ),
    ".venv/bin/twistd -n sockjs --port ssl:8443:privateKey=site.key:certKey=site.pem": (
        "it needs your TLS key and certificate"
    ),
    ".venv/bin/twistd -n sockjs --factory myapp.chat.factory --prefix /chat": _PLACEHOLDER,
    "PYTHONPATH=/srv/myapp .venv/bin/twistd -n sockjs --port 8081 "
    "--factory myapp.chat.factory --prefix /chat": _PLACEHOLDER,
    ".venv/bin/twistd -n sockjs --port 8081 --workers 4 --redis redis://127.0.0.1:6379": (
        "it needs a Redis server on port 6379: tests.test_workers runs --workers and --redis "
        "against redis-server and haproxy of its own, on free ports"
    ),
    ".venv/bin/twistd -n sockjs --port 8081 --workers 4 --factory myapp.chat.factory "
    "--prefix /chat --redis redis://127.0.0.1:6379/0": _PLACEHOLDER,
    ".venv/bin/twistd sockjs --port 80 --factory myapp.chat.factory --prefix /chat "
    "--print-haproxy-config --backend 10.0.0.1:8081 --backend 10.0.0.2:8081": _PLACEHOLDER,
}

# Documented commands not run here whatever their arguments, and why.
NOT_RUN_PREFIXES = {"bash bench/run": _BENCH}


def notRun(command: Command) -> Optional[str]:
    """
    Why C{command} is not run here, or C{None}.
    """
    for prefix, why in NOT_RUN_PREFIXES.items():
        if command.bare == prefix or command.bare.startswith(prefix + " "):
            return why
    return NOT_RUN.get(command.bare)


# Programs that are not this project's: documented for the reader's system, not run here.
THIRD_PARTY = {"systemctl", "haproxy", "nginx", "redis-server", "redis-cli", "apt-get", "sudo"}

# Clients of the server started just before, in the same block.
CLIENTS = {"curl"}

# Programs a fresh clone does not have on PATH: the venv's are meant.
NOT_ON_PATH = {"twistd", "twist", "trial", "python", "pip", "pip3", "sphinx-build"}


@dataclass
class Command:
    """
    One documented command line.

    :ivar where: C{file:line}.
    :ivar line: The command, continuation lines joined.
    :ivar block: Which code block of its file it is in (C{None}: inline).
    :ivar output: The output the document shows for it (console blocks).
    """

    where: str
    line: str
    block: Optional[int]
    output: list[str] = field(default_factory=list)

    @property
    def bare(self) -> str:
        """
        The command without its trailing comment.
        """
        return re.sub(r"\s+#.*$", "", self.line)

    @property
    def words(self) -> list[str]:
        """
        The command's words, as the shell splits them (without the comment).
        """
        return shlex.split(self.line, comments=True)

    @property
    def program(self) -> str:
        """
        The program run: the first word after any C{NAME=value} assignments.
        """
        for word in self.words:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
                return word
        return ""

    @property
    def isServer(self) -> bool:
        """
        Does it run until stopped (C{twistd -n}, an example's server)?
        """
        words = self.words
        twistd = os.path.basename(self.program) in ("twistd", "twist")
        return (twistd and "-n" in words and "--help" not in words) or any(
            re.match(r"^examples\.\w+\.server$", w) for w in words
        )


def _joinContinuations(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """
    Lines ending in a backslash joined with the next, numbered by their first line.
    """
    pending: Optional[tuple[int, str]] = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
            pending = None
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1].rstrip())
            continue
        yield number, text
    if pending is not None:
        yield pending


def _blockCommands(
    path: str, block: int, lines: list[tuple[int, str]], console: bool
) -> Iterator[Command]:
    """
    The commands of one shell or console block: C{(line number, text)} pairs, dedented.
    """
    current: Optional[Command] = None
    if console:
        for number, text in _joinContinuations(lines):
            if text.startswith(("$ ", "# ")):
                if current is not None:
                    yield current
                current = Command(f"{path}:{number}", text[2:].strip(), block)
            elif current is not None and text.strip():
                current.output.append(text.strip())
        if current is not None:
            yield current
        return
    for number, text in _joinContinuations(lines):
        if text.strip() and not text.lstrip().startswith("#"):
            yield Command(f"{path}:{number}", text.strip(), block)


INLINE_START = (".venv/bin/", "bash ")


def _inline(path: str, number: int, text: str, pattern: str) -> Iterator[Command]:
    """
    The inline code spans (C{pattern}'s group 1) of a paragraph starting at line
    C{number} that are commands: several words, starting with C{.venv/bin/} or C{bash }.
    """
    for match in re.finditer(pattern, text, re.S):
        span = " ".join(match.group(1).split())
        if " " not in span:
            continue
        if span.startswith(INLINE_START) or re.match(r"^[A-Z_]+=\S* \.venv/bin/", span):
            yield Command(f"{path}:{number + text.count(chr(10), 0, match.start())}", span, None)


def _markdownCommands(path: str, text: str) -> Iterator[Command]:
    """
    The commands of a Markdown document: its shell blocks, and inline commands.
    """
    lines = text.splitlines()
    block = 0
    i = 0
    prose: list[tuple[int, str]] = []

    def flushProse() -> Iterator[Command]:
        if prose:
            yield from _inline(path, prose[0][0], "\n".join(t for _, t in prose), r"`([^`]+)`")
            prose.clear()

    while i < len(lines):
        fence = re.match(r"^```\s*(\w*)", lines[i])
        if fence:
            yield from flushProse()
            language = fence.group(1)
            body: list[tuple[int, str]] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append((i + 1, lines[i]))
                i += 1
            block += 1
            if language in SHELL_LANGUAGES:
                yield from _blockCommands(path, block, body, language == "console")
        elif not lines[i].strip():
            yield from flushProse()
        else:
            prose.append((i + 1, lines[i]))
        i += 1
    yield from flushProse()


def _rstCommands(path: str, text: str) -> Iterator[Command]:
    """
    The commands of a reStructuredText document: its shell code-blocks, and inline
    commands.
    """
    lines = text.splitlines()
    block = 0
    i = 0
    while i < len(lines):
        directive = re.match(r"^(\s*)\.\. code-block::\s*(\w+)", lines[i])
        literal = re.match(r"^(\s*)(?!\.\. )\S.*::$", lines[i])
        if literal:
            # A literal block is a console block when it has prompts.
            directive = re.match(r"^(\s*)()", lines[i])
        if directive:
            indent = len(directive.group(1))
            language = directive.group(2) or "literal"
            body: list[tuple[int, str]] = []
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                body.append((i + 1, lines[i]))
                i += 1
            block += 1
            dedented = [(n, t.lstrip()) for n, t in body]
            prompted = any(t.startswith("$ ") for _, t in dedented)
            if language in SHELL_LANGUAGES or (language == "literal" and prompted):
                yield from _blockCommands(path, block, dedented, True)
            continue
        i += 1
    # Inline literals, paragraph by paragraph.
    paragraph: list[tuple[int, str]] = []
    for number, line in enumerate(lines + [""], 1):
        if line.strip():
            paragraph.append((number, line))
        elif paragraph:
            joined = "\n".join(t for _, t in paragraph)
            yield from _inline(path, paragraph[0][0], joined, r"``(.+?)``")
            paragraph = []


def documentedCommands() -> list[Command]:
    """
    Every command line in the README, examples/README.md and docs/*.rst.
    """
    commands: list[Command] = []
    for path in DOCUMENTS:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        parse = _markdownCommands if path.endswith(".md") else _rstCommands
        commands.extend(parse(path, text))
    return commands


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _movePorts(line: str, ports: dict[str, int], server: bool) -> str:
    """
    C{line} with each documented port (a four-digit number starting with 8 or 9) moved to
    its free port: a bare port argument of a server becomes a loopback-only TCP
    description.
    """

    def port(number: str) -> int:
        if number not in ports:
            ports[number] = _freePort()
        return ports[number]

    def word(match: re.Match[str]) -> str:
        return f"tcp:{port(match.group(2))}:interface=127.0.0.1"

    if server:
        line = re.sub(r"(?<=\s)()([89]\d{3})(?=\s|$)", word, line)
    return re.sub(r"(?<=:)([89]\d{3})(?=\D|$)", lambda m: str(port(m.group(1))), line)


class _Server:
    """
    A documented server command, running in its own process group.
    """

    def __init__(
        self, command: str, ports: dict[str, int], env: Optional[dict[str, str]] = None
    ) -> None:
        self.command = command
        self.ports = dict(ports)
        # A file, not a pipe: a server that logs a lot must never block on its output.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=_cleanEnvironment() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def waitUntilListening(self) -> Optional[str]:
        """
        Wait until every port accepts connections; C{None}, or what went wrong.
        """
        deadline = time.monotonic() + START_TIMEOUT
        waiting = set(self.ports.values())
        while waiting:
            if self.process.poll() is not None:
                return f"it exited with {self.process.returncode} before listening"
            for port in list(waiting):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    continue
                waiting.discard(port)
            if time.monotonic() > deadline:
                return f"ports {sorted(waiting)} not listening after {START_TIMEOUT} s"
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        """
        SIGTERM to its process group, then SIGKILL if it lingers.
        """
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    @property
    def output(self) -> bytes:
        """
        What it wrote so far.
        """
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        """
        Stop it, and forget its output.
        """
        self.stop()
        self.log.close()


def _cleanEnvironment() -> dict[str, str]:
    """
    A person's shell: no venv activated, not under trial.  C{PYTHONPATH} is this checkout,
    so that the code under test is this checkout's even where C{.venv} is shared with
    another checkout (in a fresh clone, the editable install points here anyway; that the
    installed C{twistd} works without it is tests.test_tap.InstalledTwistdTests' job).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = ROOT
    venvBin = os.path.join(ROOT, ".venv", "bin")
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if os.path.abspath(p) != venvBin
    )
    return env


def _get(url: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


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


class ReadmeSnippetTests(SynchronousTestCase):
    def test_snippetLogs(self) -> None:
        """The README's Python snippet runs, says that it is listening, and serves /echo."""
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.M | re.S)
        [snippet] = [b for b in blocks if "reactor.run()" in b]
        port = _freePort()
        script, count = re.subn(
            r"reactor\.listenTCP\(8081, (.*)\)$",
            rf'reactor.listenTCP({port}, \1, interface="127.0.0.1")',
            snippet,
            flags=re.M,
        )
        self.assertEqual(count, 1, snippet)
        path = os.path.abspath(self.mktemp() + ".py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        server = _Server(
            f"exec {shlex.quote(os.path.join(ROOT, '.venv', 'bin', 'python'))} "
            f"{shlex.quote(path)}",
            {"8081": port},
            env=_cleanEnvironment(),
        )
        self.addCleanup(server.close)
        self.assertIsNone(server.waitUntilListening())
        status, body = _get(f"http://127.0.0.1:{port}/echo")
        server.stop()
        output = server.output.decode("utf-8", "replace")
        self.assertEqual((status, body), (200, b"Welcome to SockJS!\n"), output)
        self.assertIn(f"starting on {port}", output)


class DocumentedCommandsTests(SynchronousTestCase):
    """
    Every documented command line, as written (one test per line, added below).
    """

    def test_found(self) -> None:
        """The commands are found: the README's two, and the quickstart's server with its curl."""
        lines = {(c.where.split(":")[0], c.line) for c in documentedCommands()}
        for expected in [
            ("README.md", "bash .ci/setup && .venv/bin/python -m twisted.trial tests"),
            ("README.md", "python3 -m venv .venv && .venv/bin/pip install ."),
            ("docs/quickstart.rst", ".venv/bin/twistd -n sockjs --port 8081"),
            ("docs/quickstart.rst", "curl http://localhost:8081/echo"),
        ]:
            self.assertIn(expected, lines)

    def test_clientsRunWithTheirServer(self) -> None:
        """The commands after a server in its block are its clients, with their documented output."""
        commands = documentedCommands()
        [server] = [
            c
            for c in commands
            if c.where.startswith("docs/quickstart.rst:") and c.isServer and c.block is not None
        ]
        self.assertEqual(
            [(c.line, c.output) for c in _clientsOf(commands, server)],
            [("curl http://localhost:8081/echo", ["Welcome to SockJS!"])],
        )

    def test_notRunListIsCurrent(self) -> None:
        """Every command the tests leave out is still documented (the list never goes stale)."""
        documented = {c.bare for c in documentedCommands()}
        self.assertEqual(sorted(set(NOT_RUN) - documented), [])

    def test_noBareCommands(self) -> None:
        """No documented command needs an activated venv (`twistd`, `python`: `.venv/bin/...`)."""
        bare = [
            f"{c.where}: {c.line}"
            for c in documentedCommands()
            if c.program in NOT_ON_PATH or (c.program == "python3" and "venv" not in c.words)
        ]
        self.assertEqual(bare, [])

    def test_everyCommandKnown(self) -> None:
        """Each documented command is run here, left out for a stated reason, or a third-party program."""
        unknown = [
            f"{c.where}: {c.line}"
            for c in documentedCommands()
            if notRun(c) is None
            and c.program not in THIRD_PARTY
            and not c.program.startswith(".venv/bin/")
            and c.program not in CLIENTS
            and not (c.program == "bash" and c.words[1:2] and not c.words[1].startswith("-"))
            and c.program != "python3"
        ]
        self.assertEqual(unknown, [])

    def runDocumented(self, where: str) -> None:
        """
        Run the command at C{where} (C{file:line}): a server with the client lines after
        it, or a command.
        """
        commands = documentedCommands()
        [command] = [c for c in commands if c.where == where]
        if command.isServer:
            self.runServer(command, _clientsOf(commands, command))
        else:
            result = subprocess.run(
                ["bash", "-c", command.line],
                cwd=ROOT,
                env=_cleanEnvironment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT,
            )
            output = result.stdout.decode("utf-8", "replace")
            self.assertEqual(result.returncode, 0, f"{where}: {command.line}\n{output[-3000:]}")
            if command.output:
                self.assertEqual(output.split(), " ".join(command.output).split())

    def runServer(self, command: Command, clients: list[Command]) -> None:
        ports: dict[str, int] = {}
        line = _movePorts(command.line, ports, server=True)
        server = _Server(line, ports)
        self.addCleanup(server.close)
        try:
            self.checkServer(server, line, ports, clients)
        except (self.failureException, OSError, http.client.HTTPException) as e:
            server.stop()
            self.fail(
                f"{e}\n{command.where}: {command.line}\nran as: {line}\nits output:\n"
                + server.output.decode("utf-8", "replace")[-3000:]
            )
        server.stop()

    def checkServer(
        self, server: _Server, line: str, ports: dict[str, int], clients: list[Command]
    ) -> None:
        """
        The server listens, answers HTTP on its first port, answers 200 at each URL its line
        names, and gives each client line the output documented.
        """
        problem = server.waitUntilListening()
        if problem is not None:
            self.fail(f"the server did not start: {problem}")
        first = next(iter(ports.values()))
        status, _ = _get(f"http://127.0.0.1:{first}/")
        self.assertLess(status, 500, f"GET / on port {first}")
        for url in re.findall(r"http://localhost:\d+/\S*", line):
            got, body = _get(url.rstrip(".,;)"))
            self.assertEqual(got, 200, f"{url}: {got} {body[:200]!r}")
        for client in clients:
            clientLine = _movePorts(client.line, ports, server=False)
            result = subprocess.run(
                ["bash", "-c", clientLine],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
            )
            output = result.stdout.decode("utf-8", "replace")
            errors = result.stderr.decode("utf-8", "replace")
            self.assertEqual(
                result.returncode, 0, f"{client.where}: {clientLine}\n{output}{errors}"
            )
            if client.output:
                # The document shows standard output (curl's progress meter, which it
                # shows when its output is not a terminal, goes to standard error).
                self.assertEqual(output.split(), " ".join(client.output).split(), client.where)


def _documentedTest(where: str) -> Callable[[DocumentedCommandsTests], None]:
    def test(self: DocumentedCommandsTests) -> None:
        self.runDocumented(where)

    return test


def _clientsOf(commands: list[Command], server: Command) -> list[Command]:
    """
    The commands after C{server} in its block, up to the next server: they run against it.
    """
    clients = []
    for other in commands[commands.index(server) + 1 :]:
        sameFile = other.where.split(":")[0] == server.where.split(":")[0]
        if server.block is None or not sameFile or other.block != server.block or other.isServer:
            break
        if notRun(other) is None:
            clients.append(other)
    return clients


def _addDocumentedTests() -> None:
    """
    One test per documented command that is run here: a server (with its clients), or a
    command on its own.
    """
    commands = documentedCommands()
    clients = {c.where for s in commands if s.isServer for c in _clientsOf(commands, s)}
    for command in commands:
        if notRun(command) or command.program in THIRD_PARTY or command.where in clients:
            continue
        name = "test_" + re.sub(r"\W", "_", command.where)
        test = _documentedTest(command.where)
        kind = "serves, and answers" if command.isServer else "runs, and exits 0"
        test.__name__ = name
        test.__qualname__ = f"DocumentedCommandsTests.{name}"
        test.__doc__ = f"{command.where} `{command.line}` {kind}, as written."
        setattr(DocumentedCommandsTests, name, test)


_addDocumentedTests()
