"""
Sphinx configuration for sockjs-twisted.

The library's docstrings mix reST field lists (C{:param x:}) with Twisted's epytext inline
markup (C{C{...}}, C{L{...}}, C{I{...}}); L{convertEpytext} turns the latter into reST as
autodoc reads them.  Three small directives render what would otherwise drift from the
code: C{autointerface} (a zope interface, with the docstrings of its implementation),
C{sockjs-options} (every option, defaults read from L{SockJSOptions}) and
C{twistd-options} (every option of C{twistd sockjs}, read from its L{usage.Options}).

The build needs no network: no intersphinx, the built-in alabaster theme.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, Optional

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import attr  # noqa: E402

import sockjs_twisted  # noqa: E402

# -- Project -------------------------------------------------------------------------------

project = "sockjs-twisted"
author = "the sockjs-twisted authors"
copyright = "the sockjs-twisted authors"
release = "0.1.0.dev0"
version = "0.1"

# -- General -------------------------------------------------------------------------------

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "code"
pygments_style = "sphinx"

# Every cross-reference must resolve, except those into other projects' documentation
# (no intersphinx: the build is offline), which render as plain code.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(twisted|zope|attr|autobahn|typing|collections|_io)\..*"),
    (r"py:.*", r"(prometheus_client\..*|CollectorRegistry|Metric)"),
    (r"py:.*", r"(str|bytes|int|float|bool|object|dict|list|tuple|type|None|Any|Optional)"),
    (r"py:.*", r"(IAddress|IDelayedCall|IProtocol|IProtocolFactory|IReactorTime|IRequest)"),
    (r"py:.*", r"(IResource|IPushProducer|IConsumer|ITransport|Failure|Resource|Site)"),
    (r"py:.*", r"(Request|Clock|MemoryReactorClock|Deferred|Protocol|Factory|Callable)"),
    (r"py:.*", r"(LogFunction|JSessionIDPolicy|ISessionSink|ConnectionInfo|Session)"),
    (r"py:.*", r"I[A-Z]\w*(\.\w+)?"),  # Twisted's and zope's interfaces, and their methods
    (r"py:.*", r"sockjs_twisted\._.*"),
    (r"py:.*", r"sockjs_twisted\.interfaces\.\w+"),
]

# -- autodoc -------------------------------------------------------------------------------

autoclass_content = "both"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
# Methods that only override Twisted's (render, getChild, startFactory) stay out, rather
# than showing Twisted's docstrings as if they were ours.
autodoc_inherit_docstrings = False

# -- HTML ----------------------------------------------------------------------------------

html_theme = "alabaster"
html_title = "sockjs-twisted"
html_theme_options = {
    "description": "A SockJS server for Twisted",
    "fixed_sidebar": True,
    "show_powered_by": False,
}
html_static_path: list[str] = []


# -- epytext inline markup -> reST ---------------------------------------------------------

_FIELDS = {
    "param": "param",
    "type": "type",
    "keyword": "keyword",
    "kwarg": "keyword",
    "ivar": "ivar",
    "cvar": "cvar",
    "var": "var",
    "return": "return",
    "returns": "return",
    "rtype": "rtype",
    "raise": "raises",
    "raises": "raises",
    "see": "see",
    "since": "since",
    "note": "note",
    "author": "author",
}
_FIELD = re.compile(r"^(\s*)@(\w+)(\s+[^:]*)?:")


def _matchingBrace(text: str, start: int) -> int:
    """
    The index of the C{}} closing the C{{} at C{start}, or -1.
    """
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _inline(kind: str, body: str) -> str:
    if kind == "C":
        return "``" + body + "``"
    if kind == "I":
        return "*" + convertInline(body) + "*"
    if kind == "B":
        return "**" + convertInline(body) + "**"
    if kind == "L":
        # The leading dot lets Sphinx find the name in any module (L{SockJSOptions} from
        # sockjs_twisted.testing); it is not shown.
        if "<" in body:
            text, _, target = body.rpartition("<")
            return ":py:obj:`" + text.strip() + " <." + target.rstrip(">").strip() + ">`"
        return ":py:obj:`." + body + "`"
    # U{url} or U{text <url>}
    return "`" + body + "`__" if "<" in body else body


def convertInline(text: str) -> str:
    """
    Replace epytext's C{X{...}} inline markup in C{text} with reST; protect the result
    from touching letters (reST wants whitespace or punctuation around inline markup).
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "CILBU" and text[i + 1 : i + 2] == "{" and (i == 0 or not text[i - 1].isalnum()):
            end = _matchingBrace(text, i + 1)
            if end > 0:
                converted = _inline(ch, text[i + 2 : end])
                if out and out[-1][-1:].isalnum():
                    converted = "\\ " + converted
                following = text[end + 1 : end + 2]
                if following.isalnum():
                    converted += "\\ "
                out.append(converted)
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def convertEpytext(lines: list[str]) -> list[str]:
    """
    Convert epytext fields (C{@param x:}) and inline markup (which may span lines) to
    reST.
    """
    fields = []
    for line in lines:
        match = _FIELD.match(line)
        if match and match.group(2) in _FIELDS:
            indent, name, arg = match.group(1), _FIELDS[match.group(2)], match.group(3) or ""
            line = f"{indent}:{name}{arg}:" + line[match.end() :]
        fields.append(line)
    return convertInline("\n".join(fields)).split("\n")


def _processDocstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    lines[:] = convertEpytext(lines)


_INTERFACE_REPR = re.compile(r"<InterfaceClass (?:[\w]+\.)*(\w+)>")


def _processSignature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: Any, annotation: Any
) -> tuple[Any, Any]:
    """
    Annotations naming zope interfaces come out as their repr; use their dotted names.
    """
    if signature:
        signature = _INTERFACE_REPR.sub(r"\1", signature)
    if annotation:
        annotation = _INTERFACE_REPR.sub(r"\1", annotation)
    return signature, annotation


# -- directives ----------------------------------------------------------------------------


def _importObject(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    obj = __import__(module, fromlist=[name])
    return getattr(obj, name)


def _docLines(doc: str | None) -> list[str]:
    return convertEpytext(inspect.cleandoc(doc or "").splitlines())


class _GeneratedRST(SphinxDirective):
    """
    A directive that writes reST and has it parsed in place.
    """

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.section()
        source = f"<{self.name} {' '.join(self.arguments)}>"
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, container)
        return list(container.children)


class AutoInterface(_GeneratedRST):
    """
    C{.. autointerface:: package.IThing}: the interface's docstring, then each attribute
    and method it declares (its bases' too, each noted), documented from the
    C{:implementation:} class's docstring when that has one, else from the interface's.
    """

    required_arguments = 1
    option_spec = {"implementation": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        dotted = self.arguments[0]
        iface = _importObject(dotted)
        implementation = None
        if "implementation" in self.options:
            implementation = _importObject(self.options["implementation"])
        module, _, name = dotted.rpartition(".")
        publicModule = "sockjs_twisted" if hasattr(sockjs_twisted, name) else module
        lines = [f".. py:class:: {name}", f"   :module: {publicModule}", ""]
        lines += ["   " + line for line in _docLines(iface.__doc__)]
        lines.append("")
        own = list(iface.names())
        inherited = [n for n in iface.names(all=True) if n not in own]
        for attrName in own + inherited:
            description = iface[attrName]
            declaredBy = description.interface
            signature = getattr(description, "getSignatureString", None)
            if signature is not None:
                lines.append(f"   .. py:method:: {attrName}{signature()}")
            else:
                lines.append(f"   .. py:attribute:: {attrName}")
            lines.append("")
            doc = None
            implemented = getattr(implementation, attrName, None)
            if implemented is not None and callable(implemented):
                doc = implemented.__doc__
            if not doc:
                doc = (
                    description.getDoc() if hasattr(description, "getDoc") else description.__doc__
                )
            lines += ["      " + line for line in _docLines(doc)]
            if declaredBy is not iface:
                lines += [
                    "",
                    f"      (Declared by ``{declaredBy.__module__}.{declaredBy.__name__}``.)",
                ]
            lines.append("")
        return self.parse(lines)


_IVAR = re.compile(r"^:ivar (\w+):\s*(.*)$")


def _ivars(doc: str) -> dict[str, str]:
    """
    The C{:ivar name:} descriptions of a class docstring, joined into one line each.
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in inspect.cleandoc(doc).splitlines():
        match = _IVAR.match(line)
        if match:
            current = found.setdefault(match.group(1), [])
            current.append(match.group(2))
        elif current is not None and line.startswith(" ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return {name: " ".join(parts) for name, parts in found.items()}


def _default(value: Any) -> str:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1024
        and value % 1024 == 0
    ):
        kib = value // 1024
        size = f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"
        return f"``{value!r}`` ({size})"
    return f"``{value!r}``"


class SockJSOptionsList(_GeneratedRST):
    """
    C{.. sockjs-options::}: every field of L{SockJSOptions}, with its default, its
    C{twistd sockjs} flag, and what it is for (the class docstring's C{:ivar:}).
    """

    def run(self) -> list[nodes.Node]:
        from sockjs_twisted import SockJSOptions
        from sockjs_twisted._tap import Options

        described = _ivars(SockJSOptions.__doc__ or "")
        flags = set(Options().synonyms.values())
        lines = []
        for field in attr.fields(SockJSOptions):
            flag = field.name.replace("_", "-")
            if field.name == "websocket":
                flag = "no-websocket"
            elif field.name == "allowed_origins":
                flag = "allowed-origin"
            twistd = f"``--{flag}``" if flag in flags else "none"
            lines += [
                f"``{field.name}``",
                f"   Default: {_default(field.default)}.  ``twistd sockjs``: {twistd}.",
                "",
                f"   {convertInline(described.get(field.name, ''))}",
                "",
            ]
        return self.parse(lines)


_LITERAL_TOKEN = re.compile(r"^([(]?)(.*?)([.,;:)]*)$")


def _helpText(text: str) -> str:
    """
    C{--help} text as reST: option names, endpoint descriptions, URLs and other code-like
    words become literals (so that they are neither links nor typeset), and no other
    character starts inline markup.
    """
    words = []
    for word in text.split():
        opening, core, closing = _LITERAL_TOKEN.match(word).groups()  # type: ignore[union-attr]
        if core.startswith("--") or (len(core) > 1 and any(c in core for c in ":/_=")):
            words.append(f"{opening}``{core}``{closing}")
        else:
            words.append(re.sub(r"([*`|\\])", r"\\\1", word))
    return " ".join(words)


class TwistdOptionsList(_GeneratedRST):
    """
    C{.. twistd-options::}: every option C{twistd sockjs} takes, with its default and help.
    """

    def run(self) -> list[nodes.Node]:
        from sockjs_twisted._tap import Options

        options = Options()
        shortFor = {long: short for short, long in options.synonyms.items() if len(short) == 1}
        lines = []
        for raw in options.longOpt:
            name = raw.rstrip("=")
            takesValue = raw.endswith("=")
            spelled = f"--{name}" + (" VALUE" if takesValue else "")
            if name in shortFor:
                spelled = (
                    f"-{shortFor[name]} VALUE, {spelled}"
                    if takesValue
                    else f"-{shortFor[name]}, {spelled}"
                )
            help = _helpText(options.docs.get(name, ""))
            default = options.defaults.get(name)
            if takesValue and default not in (None, ""):
                help += f"  Default: ``{default!r}``."
            lines += [f"``{spelled}``", f"   {help or '-'}", ""]
        return self.parse(lines)


def _docstringLinkMissing(app: Any, domain: Any, node: Any) -> Optional[bool]:
    """
    An C{L{...}} in a docstring that names something this documentation does not hold (a
    Twisted class, an instance variable) renders as code, without a warning: there is no
    intersphinx to resolve it.  References written in the pages are still checked.
    """
    source = node.source or ""
    if (
        node.get("refdomain") == "py"
        and node.get("reftype") == "obj"
        and ":docstring of " in source
    ):
        return True
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("warn-missing-reference", _docstringLinkMissing)
    app.connect("autodoc-process-docstring", _processDocstring)
    app.connect("autodoc-process-signature", _processSignature)
    app.add_directive("autointerface", AutoInterface)
    app.add_directive("sockjs-options", SockJSOptionsList)
    app.add_directive("twistd-options", TwistdOptionsList)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
