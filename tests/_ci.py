"""
What "CI" means for this test suite, in one place; and C{SOCKJS_QUICK=1}, the fast subset
for working on the code (no browser, benchmark or PyPy).

Under CI nothing may skip because a tool is missing: a missing Chromium, PyPy, Node.js,
haproxy, nginx or redis-server is a failure there, and a skip (that says what is missing
and how to get it) everywhere else.  ``.ci/run`` also fails on any skip whose reason is not
on its explicit list (``.ci/allowed-skips``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

__all__ = ["inCI", "IN_CI", "missing", "skipIfQuick"]

_FALSE = ("0", "false", "no", "off")


def inCI(environ: Optional[Mapping[str, str]] = None) -> bool:
    """
    Is this a CI run?  Yes when ``CI`` is set to a non-empty value other than ``0``,
    ``false``, ``no`` or ``off`` (in any case): ``CI=true``, ``CI=1``, ``CI=yes`` all mean
    CI.

    :param environ: The environment to look at (default: ``os.environ``).
    """
    value = (os.environ if environ is None else environ).get("CI", "").strip()
    return bool(value) and value.lower() not in _FALSE


IN_CI = inCI()


def missing(case: SynchronousTestCase, reason: str) -> NoReturn:
    """
    Something outside the project that ``case`` needs is missing: fail under CI, skip with
    ``reason`` elsewhere.

    :param case: The running test.
    :param reason: What is missing, and how to get it.
    """
    if inCI():
        case.fail(f"{reason} (a failure, not a skip, under CI)")
    raise SkipTest(reason)


def skipIfQuick(what: str) -> None:
    """
    Skip the calling test when C{SOCKJS_QUICK=1}: C{what} is slow, and the fast subset
    leaves it out.  (Under CI such a skip is not on the allowed list, so it fails the run.)

    :param what: What is left out, for the skip's reason.
    """
    if os.environ.get("SOCKJS_QUICK", "") not in ("", "0"):
        raise SkipTest(f"{what}: left out of the fast subset (SOCKJS_QUICK is set)")
