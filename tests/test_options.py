"""
Options: sockjs-node's names and defaults, and clear errors for bad values.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted import SockJSOptions, SockJSResource
from sockjs_twisted._options import DEFAULT_SOCKJS_URL

from ._fakes import RecordingFactory


class DefaultsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """Every option defaults as in sockjs-node (times in seconds)."""
        o = SockJSOptions()
        self.assertEqual(o.sockjs_url, DEFAULT_SOCKJS_URL)
        self.assertIn("sockjs-client@1.6.1", o.sockjs_url)
        self.assertEqual(o.prefix, "")
        self.assertEqual(o.response_limit, 128 * 1024)
        self.assertIs(o.websocket, True)
        self.assertIs(o.jsessionid, False)
        self.assertIsNone(o.log)
        self.assertEqual(o.heartbeat_delay, 25)
        self.assertEqual(o.disconnect_delay, 5)
        self.assertIs(o.disable_cors, False)
        self.assertEqual(o.max_message_size, 1024 * 1024)
        self.assertEqual(o.max_body_size, 1024 * 1024)
        self.assertIsNone(o.max_sessions)
        self.assertEqual(o.max_queue_size, 4 * 1024 * 1024)
        self.assertIsNone(o.allowed_origins)

    def test_jsessionidCallable(self) -> None:
        """jsessionid may be a callable."""
        policy = lambda request: None  # noqa: E731
        self.assertIs(SockJSOptions(jsessionid=policy).jsessionid, policy)

    def test_originsAsTuple(self) -> None:
        """allowed_origins is kept as a tuple."""
        self.assertEqual(
            SockJSOptions(allowed_origins=["https://a"]).allowed_origins, ("https://a",)
        )


class ValidationTests(SynchronousTestCase):
    def assertRejected(self, name: str, value: object) -> None:
        e = self.assertRaises(ValueError, SockJSOptions, **{name: value})
        self.assertIn(name, str(e))

    def test_badValuesNameTheOption(self) -> None:
        """A bad value fails at construction with a message naming the option."""
        for name, value in [
            ("response_limit", 0),
            ("response_limit", "big"),
            ("response_limit", True),
            ("heartbeat_delay", -1),
            ("heartbeat_delay", "25"),
            ("disconnect_delay", 0),
            ("websocket", "yes"),
            ("disable_cors", 1),
            ("jsessionid", "yes"),
            ("log", "stdout"),
            ("sockjs_url", None),
            ("prefix", "echo"),
            ("prefix", "/echo/"),
            ("max_message_size", 0),
            ("max_body_size", -5),
            ("max_sessions", 0),
            ("max_queue_size", 0),
            ("allowed_origins", "https://a"),
            ("allowed_origins", [""]),
        ]:
            self.assertRejected(name, value)

    def test_unknownOption(self) -> None:
        """An unknown option is a TypeError naming it."""
        e = self.assertRaises(TypeError, SockJSResource, RecordingFactory(), colour="red")
        self.assertIn("colour", str(e))

    def test_queueHoldsTheEchoOfABody(self) -> None:
        """max_queue_size under twice max_body_size is refused, naming both: the echo of a whole body must fit."""
        e = self.assertRaises(ValueError, SockJSOptions, max_queue_size=1000, max_body_size=501)
        self.assertIn("max_queue_size", str(e))
        self.assertIn("max_body_size", str(e))
        SockJSOptions(max_queue_size=1000, max_body_size=500)
        self.assertRaises(ValueError, SockJSOptions, max_queue_size=1024 * 1024)
