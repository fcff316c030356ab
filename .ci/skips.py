"""
Check the skips in a trial log against .ci/allowed-skips: print the unexpected ones and exit
1 if there are any.

    python3 .ci/skips.py trial.log [.ci/allowed-skips]

Trial ends its output with one block per skip reason:

    ===============================================================================
    [SKIPPED]
    the reason, on one or more lines

    tests.test_x.SomeTests.test_a
    tests.test_x.SomeTests.test_b
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Iterable

RULE = re.compile(r"^[=-]{20,}$")
ALLOWED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "allowed-skips")


def parseSkips(lines: Iterable[str]) -> list[tuple[str, str]]:
    """
    The C{(test id, reason)} of every skip in a trial log.
    """
    skips: list[tuple[str, str]] = []
    state = "outside"
    reason: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if line == "[SKIPPED]":
            state, reason = "reason", []
        elif state == "reason":
            if line.strip():
                reason.append(line.strip())
            else:
                state = "tests"
        elif state == "tests":
            if RULE.match(line.strip()) or line.startswith("[") or not line.strip():
                state = "outside"
            else:
                skips.append((line.strip(), " ".join(reason)))
    return skips


def parseAllowed(lines: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    """
    The C{(test id pattern, reason pattern)} rules of an allowed-skips file.
    """
    rules = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test, _, reason = (part.strip() for part in line.partition("|"))
        rules.append((test, re.compile(reason)))
    return rules


def unexpected(
    skips: Iterable[tuple[str, str]], rules: list[tuple[str, re.Pattern[str]]]
) -> list[tuple[str, str]]:
    """
    The skips no rule allows.
    """
    return [
        (test, reason)
        for test, reason in skips
        if not any(fnmatch.fnmatchcase(test, t) and r.match(reason) for t, r in rules)
    ]


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8", errors="replace") as log:
        skips = parseSkips(log)
    with open(argv[1] if len(argv) > 1 else ALLOWED, encoding="utf-8") as allowed:
        rules = parseAllowed(allowed)
    bad = unexpected(skips, rules)
    for test, reason in bad:
        print(f"unexpected skip: {test}: {reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
