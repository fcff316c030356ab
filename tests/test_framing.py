"""
The pure framing: quoting, frames, payload decoding, callback validation.
"""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from sockjs_twisted._framing import (
    BrokenFraming,
    PayloadExpected,
    closeFrame,
    decodeHTTPPayload,
    decodeWebSocketPayload,
    isValidCallback,
    jsString,
    messageFrame,
    quoteMessage,
)

deterministic = settings(derandomize=True, max_examples=300, deadline=None)

# What the protocol suite says a server must escape.
MUST_ESCAPE = re.compile("[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]")


class QuoteTests(SynchronousTestCase):
    @deterministic
    @given(st.text())
    def test_roundTrip(self, text: str) -> None:
        """Any text quotes to a JSON string literal that parses back to it."""
        self.assertEqual(json.loads(quoteMessage(text)), text)

    @deterministic
    @given(st.text())
    def test_escapesWhatBrowsersMangle(self, text: str) -> None:
        """No character the spec lists as server-escapable survives unescaped."""
        self.assertIsNone(MUST_ESCAPE.search(quoteMessage(text)))

    def test_specKillerString(self) -> None:
        """The spec's server_killer_string comes out as its exact lower-case escapes."""
        chars = [chr(i) for i in range(255, 65536) if MUST_ESCAPE.match(chr(i))]
        expected = '"' + "".join("\\u%04x" % ord(c) for c in chars) + '"'
        self.assertEqual(quoteMessage("".join(chars)), expected)

    def test_bomAndSurrogates(self) -> None:
        """U+FEFF and lone surrogates are escaped, so the frame is always valid UTF-8."""
        self.assertEqual(quoteMessage("\ufeff\ud800"), '"\\ufeff\\ud800"')

    def test_plainNonASCIIStaysUTF8(self) -> None:
        """Ordinary non-ASCII text is not inflated into escapes."""
        self.assertEqual(
            quoteMessage("caf\u00e9 \u4e2d \U0001f600"), '"caf\u00e9 \u4e2d \U0001f600"'
        )

    def test_frames(self) -> None:
        """a[...] joins quoted messages; c[...] carries code and reason."""
        self.assertEqual(messageFrame(['"a"', '"b"']), 'a["a","b"]')
        self.assertEqual(closeFrame(3000, "Go away!"), 'c[3000,"Go away!"]')

    @deterministic
    @given(st.text())
    def test_jsStringIsScriptSafe(self, text: str) -> None:
        """jsString round-trips and never contains <, > or & (no way out of <script>)."""
        frame = messageFrame([quoteMessage(text)])
        quoted = jsString(frame)
        self.assertEqual(json.loads(quoted), frame)
        self.assertIsNone(re.search("[<>&]", quoted))


class DecodeTests(SynchronousTestCase):
    @deterministic
    @given(st.lists(st.text()))
    def test_httpRoundTrip(self, messages: list[str]) -> None:
        """A JSON array of strings decodes to the messages as UTF-8, in order."""
        payload = json.dumps(messages).encode("utf-8")
        try:
            expected = [m.encode("utf-8") for m in messages]
        except UnicodeEncodeError:
            self.assertRaises(BrokenFraming, decodeHTTPPayload, payload)
            return
        self.assertEqual(decodeHTTPPayload(payload), expected)

    def test_empty(self) -> None:
        """An empty body is 'Payload expected.'."""
        e = self.assertRaises(PayloadExpected, decodeHTTPPayload, b"")
        self.assertEqual(e.message, "Payload expected.")

    def test_broken(self) -> None:
        """Anything but a JSON array of strings in UTF-8 is 'Broken JSON encoding.'."""
        for payload in [
            b'["a',
            b"x",
            b'"a"',
            b"{}",
            b"[1]",
            b'["a", null]',
            b"[[]]",
            b"\xff",
            b"[NaN]",
            b"[Infinity]",
            b"[" * 100000,
        ]:
            e = self.assertRaises(BrokenFraming, decodeHTTPPayload, payload)
            self.assertEqual(e.message, "Broken JSON encoding.", payload[:20])

    @deterministic
    @given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
    def test_websocketAgreesWithJSON(self, inner: str) -> None:
        """Any '["..."]' payload decodes exactly as a strict JSON parser would read it."""
        payload = '["' + inner + '"]'
        try:
            expected = [m.encode("utf-8") for m in json.loads(payload)]
        except (ValueError, UnicodeEncodeError, AttributeError):
            self.assertRaises(BrokenFraming, decodeWebSocketPayload, payload)
            return
        self.assertEqual(decodeWebSocketPayload(payload), expected)

    def test_websocketForms(self) -> None:
        """A websocket message is an array, a single string, or empty (nothing)."""
        self.assertEqual(decodeWebSocketPayload('["a","b"]'), [b"a", b"b"])
        self.assertEqual(decodeWebSocketPayload('"a"'), [b"a"])
        self.assertEqual(decodeWebSocketPayload(""), [])
        self.assertEqual(decodeWebSocketPayload("[]"), [])
        for payload in ['["a', "1", "{}", "[1]", "[" * 100000]:
            self.assertRaises(BrokenFraming, decodeWebSocketPayload, payload)


class CallbackTests(SynchronousTestCase):
    def test_valid(self) -> None:
        """Letters, digits, '-', '_' and '.' make a callback."""
        for name in ["callback", "a.b_c-d", "_jp.a0", "x" * 256]:
            self.assertTrue(isValidCallback(name), name)

    def test_invalid(self) -> None:
        """Anything else, empty, non-ASCII, a trailing newline or over 256 long is refused."""
        for name in ["", " ", "*", "abc(", "a\n", "\u00e9", "a;alert(1)", "x" * 257, "a</script>"]:
            self.assertFalse(isValidCallback(name), name)
