"""Reading one line of a definition file: its text, as Python writes the line, into the data of ``_config``.

A line is written as in Python without its outer parentheses and the ``nv.`` prefix::

    (64, 2), Conv2d_BN_ReLU[-1, "stem"](7, act=SiLU)
    (256, 4), Bottleneck() * 3
    (16, 4), (32, 8), HRModule[-1, "stage2"](blocks=2)

The text is parsed by ``ast.parse`` and read node by node: literals (numbers, strings, True, False,
None, tuples, lists, dicts), names (see ``names.py``, and the parameters a file declares), calls of
classes (a nerve records its definition; a torch module is made from its arguments), a nerve's
``[selector, tag]``, the arithmetic ``+ - * / //`` of numbers, and ``partial(f, ...)``, ``output(line,
k)``, ``slice(a, b)``, ``Fraction(n, d)``, ``Dims(c, s)``, ``Shape(s)``, ``tokens(r)``, ``inf``, ``nan``
and ``torch.float16`` (a dtype). Nothing else: no attribute of a value, no comprehension, no lambda,
and nothing is evaluated. ``* n`` after the nerve repeats the line ``n`` times, as ``[line] * n``.

The result is what ``_config.Reader`` reads (``{"dims": [[64, 2]], "nerve": {"class":
"neurlink.nerves:Conv2d_BN_ReLU", ...}}``), so a file's lines meet every check of ``from_pretrained``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

from torch import nn

from .._config import _DTYPES, MAX_DEPTH, MAX_INT, MAX_LINES, MAX_STRING, encode_value
from ..errors import DimsError, NeurlinkError, UnknownTagError, a_kind, did_you_mean
from ..nerve import Nerve
from ..shapes import tokens
from .names import LINE, VALUE, NameProblem, look_up

__all__ = ["NotationError", "Scale", "LineReader", "RESERVED", "line_form"]

RESERVED = frozenset(("partial", "output", "slice", "Fraction", "Dims", "Shape", "tokens", "inf", "nan", "torch"))
_CONSTANTS = {"inf": {"float": "inf"}, "nan": {"float": "nan"}}
_NUMBERS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv)
_CONSTRUCTS = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator",
    ast.JoinedStr: "an f-string",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "an if-expression",
    ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "*unpacking",
    ast.Set: "a set",
    ast.Await: "await",
}


def line_form() -> str:
    return 'dims, then the nerve: (64, 2), Conv2d_BN_ReLU(3) or (64, 2), Bottleneck[-1, "stage1"]() * 3'


class NotationError(Exception):
    """A mistake in a line's text at ``offset`` (characters into it), said as a NeurlinkError says it:
    ``line``, where given, is the line to write instead (the file writes it as a YAML item or a JSON
    string), and ``kind`` the NeurlinkError class the build would raise for it."""

    def __init__(
        self,
        reason: str,
        allowed: str | None = None,
        offset: int | None = None,
        *,
        line: str | None = None,
        kind: type[NeurlinkError] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason, self.allowed, self.offset, self.line, self.kind = reason, allowed, offset, line, kind


@dataclass(frozen=True)
class Scale:
    """A named set of multipliers (Ultralytics' n/s/m/l/x): ``width`` for channels written as numbers,
    ``depth`` for repeats (``* n`` and a nerve's ``depth_arguments``), channels first capped at
    ``max_channels`` and rounded up to ``divisor``; ``params``: values the scale gives the file's parameters."""

    name: str
    width: float = 1.0
    depth: float = 1.0
    max_channels: int | None = None
    divisor: int = 8
    params: Mapping[str, Any] = field(default_factory=dict)

    def channels(self, count: int) -> int:
        capped = count if self.max_channels is None else min(count, self.max_channels)
        return max(self.divisor, math.ceil(capped * self.width / self.divisor) * self.divisor)

    def repeats(self, count: int) -> int:
        return max(round(count * self.depth), 1) if count > 1 else count


class LineReader:
    """Reads lines' texts into data. With ``resolve=False`` nothing is imported (names are checked
    against the rule from their text); with ``resolve=True`` trusted modules are imported as named."""

    def __init__(
        self,
        params: dict[str, Any],
        scale: Scale | None,
        trusted: tuple[str, ...],
        *,
        resolve: bool,
        file_tags: frozenset[str] | None = None,
    ) -> None:
        self.params, self.scale, self.trusted, self.resolve = params, scale, trusted, resolve
        self.file_tags = file_tags  # every tag the file's lines give, where known (a reader's second pass)
        # the lines read so far, for a concatenation's channels under a scale: each line's (written, built)
        # channels of every output, and the lines' tags
        self.declared: list[tuple[tuple[int, int], ...]] = []
        self.tags: dict[str, int] = {}
        self.scaled: list[str] = []  # what the scale made of the last line's numbers: "channels 1536 are 384"

    # --- a line ---------------------------------------------------------------------------------------

    def read(self, text: str) -> tuple[dict, int]:
        """The line's data and how many times it is repeated."""
        if len(text) > MAX_STRING:
            raise NotationError(f"a line of {len(text):,} characters; a line has at most {MAX_STRING:,}")
        self.text = text
        self._starts = [0]
        for piece in text.split("\n")[:-1]:
            self._starts.append(self._starts[-1] + len(piece) + 1)
        try:
            body = ast.parse(text, mode="eval").body
        except SyntaxError as error:
            offset = None if error.offset is None else max(error.offset - 1, 0)
            if error.lineno is not None and error.lineno > 1 and offset is not None:
                offset += self._starts[min(error.lineno, len(self._starts)) - 1]
            raise NotationError(f"not a line: {error.msg}", allowed=line_form(), offset=offset) from None
        except (ValueError, MemoryError, RecursionError):
            raise NotationError("not a line", allowed=line_form()) from None
        if not isinstance(body, ast.Tuple) or len(body.elts) < 2:
            self.python_form(body)
            raise NotationError("a line is its dims, then its nerve", allowed=line_form(), offset=self.at(body))
        *dims_nodes, nerve_node = body.elts
        if isinstance(nerve_node, ast.Tuple) and isinstance(dims_nodes[0], (ast.Call, ast.Subscript)):
            written = ", ".join(self.source(node) for node in [*dims_nodes[1:], nerve_node])
            raise NotationError(
                f"the nerve comes after the line's dims: {written}, {self.source(dims_nodes[0])}",
                allowed=line_form(),
                offset=self.at(dims_nodes[0]),
            )
        repeat, self.scaled = 1, []
        if isinstance(nerve_node, ast.BinOp) and isinstance(nerve_node.op, ast.Mult):
            count = self.value(nerve_node.right, 0)
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_LINES:
                raise NotationError(
                    f"* {self.source(nerve_node.right)} repeats a line a number of times, but it is {count!r}",
                    allowed=f"* n with n an int from 1 to {MAX_LINES:,}",
                    offset=self.at(nerve_node.right),
                )
            if self.scale is not None and not self.uses_params(nerve_node.right):
                count, before = self.scale.repeats(count), count
                if count != before:
                    self.scaled.append(f"* {before} is * {count}")
            nerve_node, repeat = nerve_node.left, count
        kind, nerve, cls = self.call(nerve_node, LINE, 0)
        dims = [self.dims(node) for node in dims_nodes]
        channels = [count for count, _ in dims]  # as written
        if self.scale is not None and not getattr(cls, "is_input", False):
            self.scale_channels(dims, dims_nodes, nerve, cls)
            if kind == "nerve":
                self.scale_depth(cast(ast.Call, nerve_node), nerve, cls)
        self.scaled[:0] = [f"channels {w} are {d[0]}" for w, d in zip(channels, dims) if w != d[0]]
        tag = nerve.get("tag") if kind == "nerve" else None
        if isinstance(tag, str) and tag not in self.tags:  # (a tag used twice is the build's error)
            self.tags[tag] = len(self.declared)
        self.declared += [tuple((w, d[0]) for w, d in zip(channels, dims))] * repeat
        return {"dims": dims, kind: nerve}, repeat

    def python_form(self, body: ast.expr) -> None:
        """The error of a line written as an item of a Python list (``[line] * n``, ``[line]``, ``(line),``
        with a comma after Python's outer parentheses), naming the line a file writes (its nerve without
        ``nv.``), if ``body`` is one."""
        node, repeat = body, None
        if (
            isinstance(body, ast.BinOp)
            and isinstance(body.op, ast.Mult)
            and isinstance(body.left, (ast.List, ast.Tuple))
        ):
            node, repeat = body.left, body.right
        items = _line_items(node, repeated=repeat is not None)
        if items is None:
            return
        *dims, nerve = items
        nerve_text = self.source(nerve)
        without_nv = nerve_text.startswith("nv.") and len(nerve_text) > 3
        line = ", ".join([*map(self.source, dims), nerve_text[3:] if without_nv else nerve_text])
        if repeat is not None:
            line += f" * {self.source(repeat)}"
            reason = "a line repeated as Python writes it, [line] * n: in a file the repeat follows the nerve, without"
            reason += " the brackets"
        elif isinstance(node, ast.List):
            reason = "a line in Python's brackets, [line]: a file writes it without them"
        else:
            reason = "a line as an item of a Python list, (line),: a file writes it without the outer parentheses"
            reason += " and the comma"
        if without_nv:
            reason += ", and its nerve without nv. (the nerve ending a line is one of neurlink.nerves first)"
        raise NotationError(reason, offset=self.at(body), line=line)

    def dims(self, node: ast.expr) -> list:
        if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
            what = "a nerve" if isinstance(node, (ast.Call, ast.Subscript)) else self.source(node)
            raise NotationError(
                f"{what} stands where the line's dims are: dims are (channels, shape), and the nerve comes last",
                allowed=line_form(),
                offset=self.at(node),
            )
        channels_node, shape_node = node.elts
        channels = self.value(channels_node, 1)
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            written = self.source(channels_node)
            shown = written if written == repr(channels) else f"{written} = {channels!r}"
            raise NotationError(
                f"channels {shown} are not a positive int",
                allowed="(channels, shape) with channels a positive int, e.g. (64, 2)",
                offset=self.at(channels_node),
            )
        return [channels, self.value(shape_node, 1)]

    # --- a scale --------------------------------------------------------------------------------------

    def scale_channels(self, dims: list[list], nodes: list[ast.expr], nerve: dict, cls: Any) -> None:
        """The channels written as numbers, times the scale's width; a line whose nerve concatenates its
        inputs (``sums_input_channels``, Concat's) has the sum of theirs, as Ultralytics derives it."""
        scale = cast(Scale, self.scale)
        for k, node in enumerate(nodes):
            channels_node = cast(ast.Tuple, node).elts[0]  # (dims() read the form)
            if self.uses_params(channels_node):
                continue  # a count computed from a parameter is the parameter's
            inputs = self.selected(nerve) if len(nodes) == 1 and getattr(cls, "sums_input_channels", False) else None
            if inputs is None:
                dims[k][0] = scale.channels(dims[k][0])
                continue
            total, built = sum(w for _, w, _ in inputs), sum(b for _, _, b in inputs)
            if dims[k][0] != total:
                lines = [str(line) for line, _, _ in inputs]
                which = f" {lines[0]}" if len(lines) == 1 else f"s {', '.join(lines[:-1])} and {lines[-1]}"
                raise NotationError(
                    f"{cls.__name__} of line{which} is {' + '.join(str(w) for _, w, _ in inputs)} = {total} channels"
                    f" as written, but the line declares {dims[k][0]}; under scale {scale.name!r} its channels are"
                    f" the sum of its inputs' scaled ones, {' + '.join(str(b) for _, _, b in inputs)} = {built}",
                    allowed=f"the channels of the lines it reads as written, {total} (which scale {scale.name!r}"
                    f" makes {built}), or a count computed from a parameter, kept as it is",
                    offset=self.at(channels_node),
                )
            dims[k][0] = built

    def selected(self, nerve: dict) -> list[tuple[int, int, int]] | None:
        """``(line, written, built)`` channels of each value the nerve's selector reads, resolved as the build
        resolves it (``table.LineTable``) against the lines read so far; None where the reader cannot tell
        (a selector the build refuses, saying why; a line of several outputs read whole)."""
        index = len(self.declared)
        try:
            refs = self.refs(nerve["selector"], index) if "selector" in nerve else [(index - 1, None)]
        except _Unresolved:
            return None
        found = []
        for line, output in refs:
            outputs = self.declared[line] if 0 <= line < index else ()
            if len(outputs) != 1 and output is None or output is not None and output >= len(outputs):
                return None
            written, built = outputs[output or 0]
            found.append((line, written, built))
        return found or None

    def refs(self, selector: Any, index: int) -> list[tuple[int, int | None]]:
        if isinstance(selector, int) and not isinstance(selector, bool):
            return [(selector if selector >= 0 else index + selector, None)]
        if isinstance(selector, str) and selector in self.tags:
            return [(self.tags[selector], None)]
        if isinstance(selector, list):
            return [ref for item in selector for ref in self.refs(item, index)]
        if isinstance(selector, dict) and list(selector) == ["slice"] and len(selector["slice"]) == 3:
            start, stop, step = selector["slice"]
            bounds = [self.refs(b, index)[0][0] if isinstance(b, str) else b for b in (start, stop)]
            if step == 0 or not all(b is None or type(b) is int for b in (*bounds, step)):
                raise _Unresolved
            return [(line, None) for line in range(index)[slice(bounds[0], bounds[1], step)]]
        if isinstance(selector, dict) and list(selector) == ["output"] and len(selector["output"]) == 2:
            target, k = selector["output"]
            refs = self.refs(target, index) if isinstance(target, (int, str)) else []
            if len(refs) != 1 or type(k) is not int or k < 0 or not 0 <= refs[0][0] < index:
                raise _Unresolved
            return [(refs[0][0], None if len(self.declared[refs[0][0]]) == 1 else k)]
        raise _Unresolved

    def scale_depth(self, node: ast.Call, nerve: dict, cls: Any) -> None:
        """The nerve's repeat counts (its class's ``depth_arguments``, Ultralytics' ``n`` of ``C2f``), where
        written as numbers, times the scale's depth as ``* n`` is: ``max(round(n * depth), 1)`` above 1."""
        names = getattr(cls, "depth_arguments", ())
        if not names:
            return
        positional = _depth_names(cls)
        scale = cast(Scale, self.scale)
        items: list[tuple[str | None, ast.expr, Any, Any]] = [
            (positional[k] if k < len(positional) else None, item, nerve.get("args"), k)
            for k, item in enumerate(node.args)
        ]
        items += [(keyword.arg, keyword.value, nerve.get("kwargs"), keyword.arg) for keyword in node.keywords]
        for name, item, holder, key in items:
            if name not in names or self.uses_params(item):
                continue
            count = holder[key]
            if type(count) is int:  # (another value is the nerve's own error)
                holder[key] = scale.repeats(count)
                if holder[key] != count:
                    self.scaled.append(f"{name}={count} is {holder[key]}")

    # --- calls ----------------------------------------------------------------------------------------

    def call(self, node: ast.expr, place: str, depth: int) -> tuple[str, dict, Any]:
        """A nerve or module call ``Cls[key](args)``: ``("nerve" or "module", its data, the class)``."""
        if not isinstance(node, ast.Call):
            if isinstance(node, (ast.Name, ast.Attribute)):
                raise NotationError(
                    f"{self.source(node)} is not called: write {self.source(node)}(...)",
                    allowed=line_form(),
                    offset=self.at(node),
                )
            if isinstance(node, ast.Subscript):
                raise NotationError(
                    f"{self.source(node)} is not called: write {self.source(node)}()", offset=self.at(node)
                )
            raise NotationError(
                f"{self.source(node)} stands where the line's nerve is", allowed=line_form(), offset=self.at(node)
            )
        func, key = node.func, None
        if isinstance(node.func, ast.Subscript):
            func, key = node.func.value, node.func.slice
        path, cls = self.name(func, place)
        nerve = cls is None or isinstance(cls, type) and issubclass(cls, Nerve)  # (None: not imported yet)
        if not nerve and not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise NotationError(
                f"{self.source(func)} is {a_kind(type(cls).__name__)}, not a nerve or a module class, and only those are"
                " called in a line",
                allowed="a class called (Conv2d(3), ReLU(inplace=True)); a function is named uncalled"
                " (act=relu) or in partial(f, ...)",
                offset=self.at(func),
            )
        data: dict[str, Any] = {"class": path}
        if key is not None:
            if not nerve:
                raise NotationError(
                    f"{self.source(func)} is a torch module, which reads the previous line and takes no [selector]",
                    allowed=f"Module[selector, tag]({self.source(func)}(...)) reads other lines",
                    offset=self.at(key),
                )
            data.update(self.selection(key, cls, depth))
            if place == LINE:  # (a nerve given as a value selects among the lines of the nerve it is given to)
                self.check_lone_tag(node, key, data)
        data.update(self.arguments(node, depth))
        return ("nerve" if nerve else "module"), data, cls

    def selection(self, node: ast.expr, cls: Any, depth: int) -> dict:
        """``[selector]``, ``[selector, tag]`` or an Input's ``["tag"]``, as Python passes them."""
        if isinstance(node, ast.Tuple):
            items = [self.key_item(item, depth) for item in node.elts]
            if len(items) != 2:
                return {"selector": {"tuple": items}}  # refused by the build, naming the line
            selector, tag = items
            if tag is not None and not isinstance(tag, str):
                raise NotationError(
                    f"the tag {self.source(node.elts[1])} is {tag!r}, not a string",
                    allowed='Nerve[selector, "tag"](...)',
                    offset=self.at(node.elts[1]),
                )
            return {"selector": selector, "tag": tag} if tag is not None else {"selector": selector}
        key = self.key_item(node, depth)
        if getattr(cls, "is_input", False) and isinstance(key, str):
            return {"tag": key}  # Input["x"] can only mean a tag
        return {"selector": key}

    def check_lone_tag(self, node: ast.Call, key: ast.expr, data: dict) -> None:
        """A lone string selector that no line of the file tags, nor anything close: meant as the line's own
        tag (``Conv2d_BN_ReLU["a"](3)``), which is written ``Conv2d_BN_ReLU[-1, "a"](3)``. (A tag of a later
        line, or a misspelt one, is the build's error, which says so.)"""
        selector = data.get("selector")
        if self.file_tags is None or isinstance(key, ast.Tuple) or not isinstance(selector, str) or "tag" in data:
            return
        if selector in self.tags or selector in self.file_tags or did_you_mean(selector, self.file_tags):
            return
        func = cast(ast.Subscript, node.func)
        written = f"{self.source(func.value)}[-1, {self.source(key)}]{self.source(node)[len(self.source(func)) :]}"
        so_far = f"; tags so far: {', '.join(map(repr, self.tags))}" if self.tags else ""
        raise NotationError(
            f"no earlier line is tagged {selector!r}, nor any line of the file: [{self.source(key)}] selects the line"
            " of that tag",
            allowed=f"{written} tags this line {selector!r} (reading the line before it), or a tag given earlier"
            f" as Nerve[selector, 'tag'](...){so_far}",
            offset=self.at(key),
            kind=UnknownTagError,
        )

    def key_item(self, node: ast.expr, depth: int) -> Any:
        if isinstance(node, ast.Slice):  # Concat["stem":4]()
            return {
                "slice": [
                    None if part is None else self.value(part, depth + 1)
                    for part in (node.lower, node.upper, node.step)
                ]
            }
        return self.value(node, depth + 1)

    def arguments(self, node: ast.Call, depth: int) -> dict:
        data: dict[str, Any] = {}
        for item in node.args:
            if isinstance(item, ast.Starred):
                raise NotationError("*unpacking is not part of the notation", offset=self.at(item))
        args = [self.value(item, depth + 1) for item in node.args]
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise NotationError("**unpacking is not part of the notation", offset=self.at(keyword.value))
            kwargs[keyword.arg] = self.value(keyword.value, depth + 1)
        if args:
            data["args"] = args
        if kwargs:
            data["kwargs"] = kwargs
        return data

    def name(self, node: ast.expr, place: str) -> tuple[str, Any]:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise NotationError(
                f"{self.source(node)} is not a name: a class is named by its name or import path",
                offset=self.at(node),
            )
        parts.insert(0, node.id)
        if node.id in self.params:
            raise NotationError(f"{node.id} is a parameter of the file, not a class", offset=self.at(node))
        try:
            return look_up(parts, place, self.trusted, resolve=self.resolve, also=self.params)
        except NameProblem as problem:
            reason = problem.reason
            close = did_you_mean(node.id, self.params) if len(parts) == 1 and place == VALUE else ""
            if close and reason.startswith(f"unknown name {node.id!r}"):  # the file's parameters before any class
                reason = f"unknown name {node.id!r}{close}"
            raise NotationError(reason, problem.allowed, self.at(node)) from None

    # --- values ---------------------------------------------------------------------------------------

    def value(self, node: ast.expr, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise NotationError(f"values nest deeper than {MAX_DEPTH} levels", offset=self.at(node))
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name) and node.id in self.params:
            return encode_value(self.params[node.id], set(), node.id)
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return dict(_CONSTANTS[node.id])
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
            if node.attr in _DTYPES:
                return {"dtype": node.attr}
        if isinstance(node, (ast.Name, ast.Attribute)):
            if isinstance(node, ast.Name) and node.id in RESERVED:
                raise NotationError(f"{node.id} is called: {node.id}(...)", offset=self.at(node))
            return {"object": self.name(node, VALUE)[0]}
        if isinstance(node, ast.Tuple):
            return {"tuple": [self.value(item, depth + 1) for item in node.elts]}
        if isinstance(node, ast.List):
            return [self.value(item, depth + 1) for item in node.elts]
        if isinstance(node, ast.Dict):
            items = {}
            for key, item in zip(node.keys, node.values):
                name = None if key is None else self.value(key, depth + 1)
                if not isinstance(name, str):
                    raise NotationError("a dict's keys are strings", offset=self.at(key if key is not None else item))
                items[name] = self.value(item, depth + 1)
            return {"dict": items}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            number = self.number(node.operand, depth)
            return self.numeric(-number if isinstance(node.op, ast.USub) else number, node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, _NUMBERS):
            left, right = self.number(node.left, depth), self.number(node.right, depth)
            try:
                if isinstance(node.op, ast.Add):
                    result = left + right
                elif isinstance(node.op, ast.Sub):
                    result = left - right
                elif isinstance(node.op, ast.Mult):
                    result = left * right
                elif isinstance(node.op, ast.Div):
                    result = left / right
                else:
                    result = left // right
            except (ZeroDivisionError, OverflowError) as error:
                raise NotationError(f"{self.source(node)}: {error}", offset=self.at(node)) from None
            return self.numeric(result, node)
        if isinstance(node, ast.Call):
            return self.value_call(node, depth)
        if isinstance(node, ast.Subscript):
            raise NotationError(f"{self.source(node)} is not called: write {self.source(node)}()", offset=self.at(node))
        if isinstance(node, ast.Slice):
            raise NotationError(
                'a slice is written as a nerve\'s [selector] (Concat["c1":4]) or as slice(a, b)',
                offset=self.at(node),
            )
        what = _CONSTRUCTS.get(type(node), f"{self.source(node)!r}")
        raise NotationError(
            f"{what} is not part of the notation",
            allowed="literals, names, calls of classes, [selector, tag], + - * / // of numbers, partial(...),"
            " output(line, k), slice(a, b), Fraction(n, d), Dims(c, s), tokens(r)",
            offset=self.at(node),
        )

    def constant(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise NotationError(
                    f"an integer of {value.bit_length()} bits, larger than any size or count", offset=self.at(node)
                )
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise NotationError(f"a string of {len(value):,} characters", offset=self.at(node))
            return value
        raise NotationError(f"{self.source(node)} is not a value of the notation", offset=self.at(node))

    def number(self, node: ast.expr, depth: int) -> int | float | Fraction:
        data = self.value(node, depth + 1)
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return data
        if isinstance(data, dict) and "fraction" in data:
            return Fraction(*data["fraction"])
        if isinstance(data, dict) and data.get("float") in ("inf", "-inf", "nan"):
            return float(data["float"])
        raise NotationError(f"{self.source(node)} is not a number", offset=self.at(node))

    def numeric(self, value: int | float | Fraction, node: ast.expr) -> Any:
        if isinstance(value, Fraction):
            return {"fraction": [value.numerator, value.denominator]} if value.denominator != 1 else value.numerator
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise NotationError(f"{self.source(node)} is larger than any size or count", offset=self.at(node))
        if isinstance(value, float) and not math.isfinite(value):
            return {"float": repr(value)}
        return value

    def value_call(self, node: ast.Call, depth: int) -> Any:
        func = node.func
        special = func.id if isinstance(func, ast.Name) and func.id in RESERVED else None
        if special is None:
            kind, data, _ = self.call(node, VALUE, depth)
            return {kind: data}
        arguments = self.arguments(node, depth)
        args, kwargs = arguments.get("args", []), arguments.get("kwargs", {})

        def form(expected: str, ok: bool) -> None:
            if not ok:
                raise NotationError(f"{special}(...) is written {expected}", offset=self.at(node))

        if special == "partial":
            form("partial(function, *args, **kwargs)", bool(args))
            return {
                "partial": {
                    "func": args[0],
                    **({"args": args[1:]} if args[1:] else {}),
                    **({"kwargs": kwargs} if kwargs else {}),
                }
            }
        if special == "output":
            form("output(line, k): output k of a line of several", len(args) == 2 and not kwargs)
            return {"output": args}
        if special == "slice":
            form("slice(stop), slice(start, stop) or slice(start, stop, step)", 1 <= len(args) <= 3 and not kwargs)
            parts = [None, args[0], None] if len(args) == 1 else [*args, None][:3]
            return {"slice": parts}
        if special == "Fraction":
            form("Fraction(numerator, denominator) of ints", 1 <= len(args) <= 2 and not kwargs)
            parts = [args[0], args[1] if len(args) == 2 else 1]
            form(
                "Fraction(numerator, denominator) of ints, the denominator not 0",
                all(isinstance(p, int) and not isinstance(p, bool) for p in parts) and parts[1] != 0,
            )
            return {"fraction": parts}
        if special == "Dims":
            form("Dims(channels, shape)", len(args) == 2 and not kwargs)
            return {"dims": args}
        if special == "Shape":
            form("Shape(shape)", len(args) == 1 and not kwargs)
            return {"shape": args[0]}
        if special == "tokens":
            try:  # the text, shown as the call it is
                return tokens(*map(_literal, args), **{key: _literal(value) for key, value in kwargs.items()})
            except (DimsError, TypeError) as error:
                raise NotationError(str(getattr(error, "reason", error)), offset=self.at(node)) from None
        raise NotationError(f"{special} is not called", offset=self.at(node))

    # --- where ----------------------------------------------------------------------------------------

    def uses_params(self, node: ast.expr) -> bool:
        return any(isinstance(item, ast.Name) and item.id in self.params for item in ast.walk(node))

    def at(self, node: Any) -> int | None:
        """The offset of ``node`` in the text (ast counts columns in UTF-8 bytes)."""
        line, column = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is None or column is None or line > len(self._starts):
            return None
        start = self._starts[line - 1]
        piece = self.text[start:].split("\n", 1)[0]
        return start + len(piece.encode("utf-8")[:column].decode("utf-8", "ignore"))

    def source(self, node: Any) -> str:
        text = ast.get_source_segment(self.text, node) if hasattr(node, "lineno") else None
        return text if text is not None else "?"


def _line_items(node: ast.expr, *, repeated: bool) -> list[ast.expr] | None:
    """The dims and nerve of a line written as Python writes an item of its list of lines: ``[dims, nerve]``,
    ``[(dims, nerve)]`` or ``((dims, nerve),)``; None for anything else."""
    if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) == 1:
        node = node.elts[0]
    if not isinstance(node, (ast.List, ast.Tuple)) or len(node.elts) < 2:
        return None
    *dims, nerve = node.elts
    if isinstance(nerve, ast.BinOp) and isinstance(nerve.op, ast.Mult) and not repeated:
        nerve = nerve.left  # [(8, 2), Conv2d(3) * 2]: the repeat already follows the nerve
    if not isinstance(nerve, ast.Call) or not all(isinstance(d, ast.Tuple) and len(d.elts) == 2 for d in dims):
        return None
    return list(node.elts)


class _Unresolved(Exception):
    """A selector the reader does not resolve (the build says what is wrong with it)."""


@functools.cache
def _depth_names(cls: type) -> tuple[str, ...]:
    """The names of a nerve's positional arguments, checking that its ``depth_arguments`` are arguments."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    names = getattr(cls, "depth_arguments", ())
    known = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if isinstance(names, str) or not all(isinstance(name, str) and name in known for name in names):
        raise NotationError(
            f"{cls.__name__}.depth_arguments is {names!r}, but it names arguments of {cls.__name__}"
            f" ({', '.join(p.name for p in parameters)}) that a scale's depth multiplies",
            allowed='a tuple of argument names, e.g. depth_arguments = ("n",)',
        )
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _literal(data: Any) -> Any:
    """A number or tuple of numbers as Python holds it (a token declaration's ratio: ``tokens((4, 8))``)."""
    if isinstance(data, dict) and "tuple" in data:
        return tuple(map(_literal, data["tuple"]))
    if isinstance(data, dict) and "fraction" in data:
        return Fraction(*data["fraction"])
    return data
