"""A definition file's text as plain data that knows where each value is written: YAML or JSON.

Both are read into :class:`Node` trees (a value, its line and column) and nothing else. YAML is
composed by PyYAML's safe loader and its scalars constructed one by one: a tag other than
``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq`` and ``!!map`` (``!!python/...``,
``!!binary``, ``!!set``, a timestamp, a merge key) is refused where it is written, and so is an
alias (``*name``), which could make a few lines of text expand to billions of values. JSON is
read by a small parser here that keeps the positions (the standard library's keeps none), as
strictly as ``json``: no NaN, no duplicate keys, nothing after the document.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .._config import MAX_DEFINITION_BYTES, MAX_DEPTH
from .errors import DefinitionFileError

__all__ = ["Node", "read_document", "MAX_BYTES", "NUMBER_LIKE"]

MAX_BYTES = MAX_DEFINITION_BYTES
_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_YAML}{kind}" for kind in ("str", "int", "float", "bool", "null")}
_OCTAL = re.compile(r"[-+]?0[0-7_]+\Z")  # an int of YAML 1.1's: 017 is 15 (in YAML 1.2 17, in JSON no number)
# a plain scalar that YAML 1.2, JSON or Python read as a number and PyYAML as text: 1e-3, 1.5e3, 0o17
NUMBER_LIKE = re.compile(r"[-+]?(?:(?:[0-9][0-9_]*)?\.?[0-9][0-9_]*[eE][-+]?[0-9]+|0[oO][0-7_]+)\Z")


@dataclass
class Node:
    """One value of the file: a scalar, a list of nodes or a dict of them, at ``line``:``column`` (1-based).

    A string's ``text_column`` is the file column of its first character when the text is the file's
    characters one for one (an unquoted YAML scalar on one line, a string without escapes), else None."""

    value: Any
    line: int
    column: int
    text_column: int | None = None
    keys: dict[str, Node] = field(default_factory=dict)  # a mapping's keys, where they are written
    end_line: int | None = None  # the last line a YAML scalar is written on
    end: tuple[int, int] | None = None  # a scalar's end: the line and column just after its last character

    def plain(self) -> Any:
        """The value as plain data: dicts, lists and scalars, without positions."""
        if isinstance(self.value, dict):
            return {key: item.plain() for key, item in self.value.items()}
        if isinstance(self.value, list):
            return [item.plain() for item in self.value]
        return self.value


def read_document(text: str, file: str, kind: str) -> Node:
    """The tree of ``text`` (``kind`` "yaml" or "json"), or a DefinitionFileError at the mistake."""
    lines = text.splitlines()
    try:
        if kind == "json":
            return _Json(text, file, lines).document()
        return _read_yaml(text, file, lines)
    except RecursionError:
        raise DefinitionFileError(f"values nest deeper than {MAX_DEPTH} levels", file=file) from None


def _fail(file: str, lines: list[str], line: int, column: int, reason: str, allowed: str | None = None) -> NoReturn:
    source = lines[line - 1] if 0 < line <= len(lines) else None
    raise DefinitionFileError(
        reason, allowed=allowed, file=file, line=line, column=column, source=source, offset=column - 1 or None
    )


# --- YAML ---------------------------------------------------------------------------------------------


def _read_yaml(text: str, file: str, lines: list[str]) -> Node:
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # (it reads the first characters: a control character fails here)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        _python_repeat(file, lines, line)
        source = lines[line - 1] if 0 < line <= len(lines) else ""
        _fail(file, lines, line, column, f"not valid YAML: {problem}", allowed=_yaml_hint(problem, source, column))
    except yaml.YAMLError as error:  # a character YAML does not read (a control character)
        position = getattr(error, "position", 0) or 0
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        _fail(file, lines, line, column, f"not valid YAML: {error}")
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        _fail(file, lines, 1, 1, "the file is empty", allowed="a mapping with lines: (and params:, ...)")
    return _YamlTree(file, lines).node(root, 0)


# Python's repeat of a line, [line] * n, as a list item: YAML reads '[...]' as a list and '*' as an alias
_PYTHON_REPEAT = re.compile(r"(\s*-\s*)\[\s*(.*?)\s*,?\s*\]\s*\*\s*([^\s#]+)\s*(?:#.*)?\Z")


def _python_repeat(file: str, lines: list[str], line: int) -> None:
    """The error of a line written in Python's form ``- [(8, 2), Conv2d(3)] * 2``, if ``line`` is one."""
    found = _PYTHON_REPEAT.match(lines[line - 1]) if 0 < line <= len(lines) else None
    if found is None:
        return
    inner = found.group(2)
    if inner.startswith("((") and inner.endswith(")"):  # [((8, 2), nv.Conv2d(3))] * 2
        inner = inner[1:-1]
    inner = re.sub(r"\bnv\.", "", inner)
    _fail(
        file,
        lines,
        line,
        len(found.group(1)) + 1,
        "a line repeated as Python writes it, [line] * n: in a file the repeat follows the nerve, without the"
        " brackets (YAML reads '[' as the start of a list, '*' as an alias)",
        allowed=f"- {inner} * {found.group(3)}",
    )


# a list item that quotes the start of its line only: - "(16, 2)", Conv2d(3)
_QUOTED_START = re.compile(r"""\s*-\s+(["'])(.*?)\1(\s*[^\s#].*)\Z""")
_INDENTED_KEY = re.compile(r"\s+([A-Za-z_][A-Za-z0-9_]*)\s*:(\s|\Z)")  # '  lines:', ' b: 2'


def _yaml_hint(problem: str, source: str, column: int) -> str | None:
    """What to write instead, from PyYAML's ``problem`` at ``column`` of the file's line ``source``."""
    from .reading import _KEYS

    if "\\t" in problem or "tab" in problem:
        return "YAML indents with spaces, never tabs"
    quoted = _QUOTED_START.match(source)
    if quoted is not None and source[: column - 1].rstrip().endswith(quoted.group(1)):
        line = quoted.group(2) + quoted.group(3).split(" #")[0].rstrip()
        written = "'" + line.replace("'", "''") + "'" if ": " in line or line[:1] in "[{'\"" else line
        return f"YAML reads the text in quotes, then more text: quote the whole line, or none of it: - {written}"
    key = _INDENTED_KEY.match(source)
    if key is not None and key.group(1) in _KEYS or "document start" in problem:
        return "the file's keys (lines:, params:, scales:, ...) start at column 1, unindented"
    if key is not None and ("block end" in problem or "mapping values are not allowed" in problem):
        return (
            "the keys of a mapping start at one column: each parameter at the column of the others under"
            " 'params:' ('  num_classes: 10')"
        )
    if "block end" in problem or "indentation" in problem or "mapping values are not allowed" in problem:
        return (
            "the items of a list start at one column ('  - ...' under 'lines:'); a line holding ': '"
            " or ' #' is written in quotes"
        )
    return None


class _YamlTree:
    def __init__(self, file: str, lines: list[str]) -> None:
        import yaml.constructor

        self.file, self.lines = file, lines
        self.constructor = yaml.constructor.SafeConstructor()
        self.seen: set[int] = set()

    def fail(self, node: Any, reason: str, allowed: str | None = None) -> NoReturn:
        _fail(self.file, self.lines, node.start_mark.line + 1, node.start_mark.column + 1, reason, allowed)

    def check_yaml_1_1(self, node: Any) -> None:
        """Refuse a scalar that PyYAML (YAML 1.1) reads otherwise than YAML 1.2, JSON and Python would, before it
        is constructed: ``1:30`` as 90 (base 60, also quadratic to construct at megabytes), ``017`` as 15,
        ``yes``/``off`` as booleans, ``1e-3`` and ``0o17`` as text."""
        text, kind = node.value, node.tag[len(_YAML) :]
        shown, short = repr(text[:40] + "..." if len(text) > 40 else text), len(text) <= 40
        if kind in ("int", "float") and ":" in text:
            value = f" ({self.constructor.construct_object(node)!r})" if short else ""
            self.fail(
                node,
                f"{shown} is a number in base 60 to YAML 1.1 (1:30 is 90), but text to YAML 1.2 and JSON",
                allowed=f"{shown} in quotes for the text, or the number in decimal{value}",
            )
        if kind == "int" and _OCTAL.match(text):
            digits = text.replace("_", "")
            values = f" ({int(digits, 8)} or {int(digits)})" if short else ""
            self.fail(
                node,
                f"{shown} is octal to YAML 1.1 (017 is 15), but decimal to YAML 1.2 (017 is 17) and no number to JSON",
                allowed=f"the number without its leading 0{values}, or {shown} in quotes for the text",
            )
        if kind == "bool" and text.lower() not in ("true", "false"):
            value = "true" if text.lower() in ("yes", "on") else "false"
            self.fail(
                node,
                f"{shown} is {value} to YAML 1.1, but text to YAML 1.2 and JSON",
                allowed=f"true or false, or {shown} in quotes for the text",
            )
        if kind == "str" and node.style is None and NUMBER_LIKE.match(text):
            value = f" ({_yaml_1_1(text)})" if short else ""
            if text.lstrip("+-")[:2].lower() == "0o":
                reason = f"{shown} is text to YAML 1.1, which has no 0o ints, but a number to YAML 1.2 and Python"
                allowed = f"the number in decimal{value}, or {shown} in quotes for the text"
            else:
                reason = (
                    f"{shown} is text to YAML 1.1 (its floats have a dot and a signed exponent), but a number to"
                    " YAML 1.2, JSON and Python"
                )
                allowed = f"the number as YAML 1.1 reads it{value}, or {shown} in quotes for the text"
            self.fail(node, reason, allowed=allowed)

    def node(self, node: Any, depth: int) -> Node:
        import yaml

        if id(node) in self.seen:
            self.fail(
                node, "an alias (*name) repeats a value written elsewhere: a definition file is read without them"
            )
        self.seen.add(id(node))
        if depth > MAX_DEPTH:
            self.fail(node, f"values nest deeper than {MAX_DEPTH} levels")
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            self.check_yaml_1_1(node)
            try:
                value = self.constructor.construct_object(node)
            except (ValueError, yaml.YAMLError) as error:  # an int of 5,000 digits, a malformed number
                self.fail(node, f"{node.value[:40]!r} cannot be read: {error}")
            text_column = None
            if isinstance(value, str) and node.start_mark.line == node.end_mark.line:
                quotes = 0 if node.style is None else 1
                if node.end_mark.column - node.start_mark.column == len(value) + 2 * quotes:
                    text_column = column + quotes  # the characters as written (no escapes, no folding)
            end = (node.end_mark.line + 1, node.end_mark.column + 1)
            return Node(value, line, column, text_column, end_line=end[0], end=end)
        if isinstance(node, yaml.SequenceNode) and node.tag == f"{_YAML}seq":
            return Node([self.node(item, depth + 1) for item in node.value], line, column)
        if isinstance(node, yaml.MappingNode) and node.tag == f"{_YAML}map":
            result: dict[str, Node] = {}
            keys: dict[str, Node] = {}
            for key_node, value_node in node.value:
                key = self.node(key_node, depth + 1)
                if not isinstance(key.value, str):
                    self.fail(key_node, f"a key is a name, not {type(key.value).__name__} {key.value!r}")
                if key.value in result:
                    self.fail(key_node, f"the key {key.value!r} is written twice (line {keys[key.value].line} too)")
                result[key.value], keys[key.value] = self.node(value_node, depth + 1), key
            return Node(result, line, column, keys=keys)
        tag = node.tag.replace(_YAML, "!!")
        self.fail(
            node,
            f"the tag {tag} is not read: a definition file holds plain data, and nothing in it is constructed or run",
            allowed="strings, numbers, true/false, null, lists and mappings (a date or another value that YAML"
            " would read as one is written in quotes)",
        )


def _yaml_1_1(text: str) -> str:
    """``1e-3`` written as YAML 1.1 reads a float: ``1.0e-3``; ``0o17`` as its int: ``15``."""
    if text.lstrip("+-")[:2].lower() == "0o":
        return str(int(text.replace("_", ""), 8))
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    elif mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}e{exponent if exponent[:1] in '+-' else '+' + exponent}"


# --- JSON ---------------------------------------------------------------------------------------------


class _Json:
    """A strict JSON parser that keeps each value's position."""

    def __init__(self, text: str, file: str, lines: list[str]) -> None:
        self.text, self.file, self.lines = text, file, lines
        self.starts = [0] + [k + 1 for k, c in enumerate(text) if c == "\n"]
        self.at = 0

    def where(self, position: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, position)
        return line, position - self.starts[line - 1] + 1

    def fail(self, position: int, reason: str) -> NoReturn:
        line, column = self.where(position)
        _fail(self.file, self.lines, line, column, f"not valid JSON: {reason}", allowed=self.hint(position, reason))

    def hint(self, position: int, reason: str) -> str | None:
        """What JSON writes instead of what stands at ``position`` (JSON's rules, not YAML's)."""
        char = self.text[position : position + 1]
        before = self.text[:position].rstrip()[-1:]
        if reason.startswith("more text"):
            return "one object: {...} and nothing after it"
        if not self.text.strip():
            return 'an object of the lines: {"lines": ["(3, 1), Input()", "(8, 2), Conv2d(3)"]}'
        if char in "]}" and char and before == ",":
            return "no comma after the last item of an array or object"
        if char == "'":
            return 'strings and keys in double quotes: "(8, 2), Conv2d(3)"'
        if char in ("/", "#"):
            return "no comments in JSON (a .yaml file may have them)"
        if before == '"' and char not in ',:]}"' and reason.startswith("expected ','"):  # "(16, "(1, 1)"), ..."
            return (
                'a " inside a string ends it: quotes inside a line are single quotes, or escaped as \\":'
                ' "(16, \'(1, 1)\'), AvgPool2d()" or "(16, \\"(1, 1)\\"), AvgPool2d()"'
            )
        if char.isalpha() or char == "_":
            return "strings and keys in double quotes; the words of JSON are true, false and null"
        if reason.startswith("expected ','") or reason == "expected ':'":
            return 'items separated by commas, a key and its value by a colon: {"lines": ["...", "..."]}'
        return None

    def skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
            self.at += 1

    def document(self) -> Node:
        self.skip()
        node = self.value(0)
        self.skip()
        if self.at != len(self.text):
            self.fail(self.at, "more text after the document's end")
        return node

    def value(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail(self.at, f"values nest deeper than {MAX_DEPTH} levels")
        start = self.at
        line, column = self.where(start)
        char = self.text[start : start + 1]
        if char == "{":
            return self.mapping(depth, line, column)
        if char == "[":
            return self.array(depth, line, column)
        if char == '"':
            text = self.string()
            exact = self.text[start + 1 : self.at - 1] == text
            return Node(text, line, column, column + 1 if exact else None, end=self.where(self.at))
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, start):
                self.at += len(word)
                return Node(value, line, column, end=self.where(self.at))
        number = json.scanner.NUMBER_RE.match(self.text, start)
        if number is None:
            self.fail(start, "expected a value" if char else "the text ends where a value is expected")
        integer, fraction, exponent = number.groups()
        if len(integer) > 30:
            self.fail(start, f"a number of {len(integer)} digits, larger than any size or count")
        self.at = number.end()
        end = self.where(self.at)
        if fraction or exponent:
            return Node(float(integer + (fraction or "") + (exponent or "")), line, column, end=end)
        return Node(int(integer), line, column, end=end)

    def string(self) -> str:
        try:
            text, self.at = json.decoder.scanstring(self.text, self.at + 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as error:
            self.fail(error.pos, error.msg)
        return text

    def expect(self, char: str) -> None:
        self.skip()
        if self.text[self.at : self.at + 1] != char:
            self.fail(self.at, f"expected {char!r}")
        self.at += 1

    def mapping(self, depth: int, line: int, column: int) -> Node:
        self.at += 1
        result: dict[str, Node] = {}
        keys: dict[str, Node] = {}
        self.skip()
        if self.text[self.at : self.at + 1] == "}":
            self.at += 1
            return Node(result, line, column)
        while True:
            self.skip()
            if self.text[self.at : self.at + 1] != '"':
                self.fail(self.at, "expected a key in double quotes")
            key_line, key_column = self.where(self.at)
            key = self.string()
            if key in result:
                self.fail(self.at - len(key) - 2, f"the key {key!r} is written twice (line {keys[key].line} too)")
            self.expect(":")
            self.skip()
            result[key], keys[key] = self.value(depth + 1), Node(key, key_line, key_column)
            self.skip()
            if self.text[self.at : self.at + 1] == "}":
                self.at += 1
                return Node(result, line, column, keys=keys)
            self.expect(",")

    def array(self, depth: int, line: int, column: int) -> Node:
        self.at += 1
        items: list[Node] = []
        self.skip()
        if self.text[self.at : self.at + 1] == "]":
            self.at += 1
            return Node(items, line, column)
        while True:
            self.skip()
            items.append(self.value(depth + 1))
            self.skip()
            if self.text[self.at : self.at + 1] == "]":
                self.at += 1
                return Node(items, line, column)
            self.expect(",")
