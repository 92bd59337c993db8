"""Issue 2, "Errors": every mistake in a definition is a neurlink error naming its line.

The table below builds invalid definitions and checks, for each, the exact error class, the first
line of the message (the line path, e.g. ``line 3 > line 2``, and the line as written), the words
saying what is wrong, and the ``allowed:`` hint where the library gives one. The tests after it
cover call-time mistakes (``InputError``), which must leave the network usable.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch

import neurlink
import neurlink.nerves as nv
from neurlink import DefinitionError, DimsError, InputError, NerveArgumentError, NeurlinkError, SelectorError, nn

IN = ((3, 1), nv.Input())
CONV = ((8, 2), nv.Conv2d(3))


# --- user nerves that are wrong in one way each ------------------------------------------------


class Raises(nv.Nerve):
    def __init__(self, k=3):
        super().__init__()
        raise ValueError(f"k={k} is not supported")

    def forward(self, x):
        return x


class NoSuper(nv.Nerve):
    def __init__(self):
        self.k = 1  # forgets super().__init__()

    def forward(self, x):
        return x


class ReadsBeforeSuper(nv.Nerve):
    def __init__(self):
        self.channels = self.target_dims.channels  # before super().__init__()
        super().__init__()


class SubmoduleBeforeSuper(nv.Nerve):
    def __init__(self):
        self.conv = torch.nn.Conv2d(3, 8, 1)  # before super().__init__()
        super().__init__()


class MissingAttribute(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.width = self.height  # an ordinary bug of the nerve's own


class Nothing(nv.Nerve):
    def __init__(self):
        super().__init__()  # neither forward() nor self.add()


class AddsNothing(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add([])


class LastDiffers(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add(((16, 2), nv.Conv2d(3)))  # its line declares (8, 2)


class BadStride(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add([((8, 2), nv.Conv2d(3)), ((8, 3), nv.Conv2d(3))])  # sub-line 2: ratio 2 -> 3


class Inner(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add([((8, 2), nv.Conv2d["nope"](3))])


class Outer(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add([((8, 2), Inner())])


class InputInside(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add([((3, 1), nv.Input())])


class TwoOutputs(nv.Nerve):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x, x


class Wraps(nv.Nerve):
    def __init__(self):
        super().__init__()
        self.add(((8, 2), Raises(7)))


class Constant(nv.Nerve):
    def __init__(self):
        super().__init__()

    def forward(self):
        return torch.zeros(1, 3, 2, 2)


class OneInput(nv.Nerve):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x


# --- the table --------------------------------------------------------------------------------


def bad(id, lines, error, where, reason, allowed=None):
    """An invalid definition: the error class, the message's first line (path: line as written),
    a regex for what is wrong, and a regex for the ``allowed:`` hint (None: the message has none)."""
    return pytest.param(lines, error, where, reason, allowed, id=id)


SELECTOR_FORMS = r"omitted \(the previous line\), an int .* a tag, a slice .* None \(no input\), or nv\.output"

INVALID = [
    # ---- selectors and tags
    bad(
        "unknown-tag-did-you-mean",
        [IN, ((8, 2), nv.Conv2d[-1, "conv1"](3)), ((8, 4), nv.Conv2d["conv"](3))],
        SelectorError,
        "line 2: ((8, 4), Conv2d['conv'](3))",
        r"no earlier line is tagged 'conv'; did you mean 'conv1'\?",
        r"a tag given earlier as Nerve\[selector, 'tag'\]\(\.\.\.\); tags so far: 'conv1'",
    ),
    bad(
        "unknown-tag-no-tags-yet",
        [IN, ((8, 2), nv.Conv2d["c1"](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d['c1'](3))",
        r"no earlier line is tagged 'c1'$",
        r"a tag given earlier",
    ),
    bad(
        "tag-given-later-is-no-new-tag",
        [IN, ((8, 2), nv.Conv2d["c1"](3)), ((8, 2), nv.Conv2d[-1, "c1"](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d['c1'](3))",
        r"no earlier line is tagged 'c1'",
        r"a tag given earlier",
    ),
    bad(
        "unknown-tag-in-list",
        [((3, 1), nv.Input["img"]()), CONV, ((11, 2), nv.Concat[["imag", -1]]())],
        SelectorError,
        "line 2: ((11, 2), Concat[['imag', -1]]())",
        r"no earlier line is tagged 'imag'; did you mean 'img'\?",
        r"tags so far: 'img'",
    ),
    bad(
        "unknown-tag-as-slice-bound",
        [IN, ((8, 2), nv.Conv2d[-1, "c1"](3)), ((16, 2), nv.Concat["c2":]())],
        SelectorError,
        "line 2: ((16, 2), Concat['c2':]())",
        r"no earlier line is tagged 'c2'; did you mean 'c1'\?",
        r"a tag given earlier",
    ),
    bad(
        "index-out-of-range-positive",
        [IN, CONV, ((8, 4), nv.Conv2d[5](3))],
        SelectorError,
        "line 2: ((8, 4), Conv2d[5](3))",
        r"selector 5 points to line 5, but line 2 can only select lines 0\.\.1",
        r"an int in -2\.\.1",
    ),
    bad(
        "index-out-of-range-negative",
        [IN, CONV, ((8, 4), nv.Conv2d[-3](3))],
        SelectorError,
        "line 2: ((8, 4), Conv2d[-3](3))",
        r"selector -3 points to line -1, but line 2 can only select lines 0\.\.1",
        r"an int in -2\.\.1",
    ),
    bad(
        "selects-its-own-line",
        [IN, CONV, ((8, 4), nv.Conv2d[2](3))],
        SelectorError,
        "line 2: ((8, 4), Conv2d[2](3))",
        r"selector 2 points to line 2, but line 2 can only select lines 0\.\.1",
        r"an int in -2\.\.1",
    ),
    bad(
        "selects-a-later-line",
        [IN, ((8, 2), nv.Conv2d[3](3)), CONV, CONV],
        SelectorError,
        "line 1: ((8, 2), Conv2d[3](3))",
        r"selector 3 points to line 3, but line 1 can only select lines 0\.\.0",
        r"an int in -1\.\.0",
    ),
    bad(
        "bool-selector",
        [IN, ((8, 2), nv.Conv2d[True](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[True](3))",
        r"selector True is a bool",
        SELECTOR_FORMS,
    ),
    bad(
        "float-selector",
        [IN, ((8, 2), nv.Conv2d[1.0](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[1.0](3))",
        r"selector 1\.0 of type float",
        SELECTOR_FORMS,
    ),
    bad(
        "slice-selects-nothing",
        [IN, CONV, ((16, 2), nv.Concat[5:]())],
        SelectorError,
        "line 2: ((16, 2), Concat[5:]())",
        r"selector \[5:\] selects no line \(line 2 can select lines 0\.\.1\)",
        SELECTOR_FORMS,
    ),
    bad(
        "empty-list-selects-nothing",
        [IN, ((8, 2), nv.Conv2d[[]](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[[]](3))",
        r"selector \[\[\]\] selects no line",
        SELECTOR_FORMS,
    ),
    bad(
        "slice-step-zero",
        [IN, CONV, ((11, 2), nv.Concat[0:2:0]())],
        SelectorError,
        "line 2: ((11, 2), Concat[0:2:0]())",
        r"slice \[0:2:0\] has step 0",
        SELECTOR_FORMS,
    ),
    bad(
        "slice-float-bound",
        [IN, CONV, ((11, 2), nv.Concat[0.5:]())],
        SelectorError,
        "line 2: ((11, 2), Concat[0.5:]())",
        r"slice \[0\.5:\] has a bound that is not an int or a tag",
        SELECTOR_FORMS,
    ),
    bad(
        "three-item-key",
        [IN, ((8, 2), nv.Conv2d[-1, "a", "b"](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[(-1, 'a', 'b')](3))",
        r"selector \(-1, 'a', 'b'\) of type tuple",
        SELECTOR_FORMS,
    ),
    bad(
        "tag-not-a-string",
        [IN, ((8, 2), nv.Conv2d[-1, 5](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[-1, 5](3))",
        r"tag 5 is not a non-empty string \(to read several lines, select a list: Concat\[\[0, 1\]\]\)",
        r"with a string tag",
    ),
    bad(
        "two-lines-without-a-list",  # Concat[0, 1] is Concat[(0, 1)]: selector 0, tag 1
        [IN, ((8, 2), nv.Conv2d(3)), ((11, 2), nv.Concat[0, 1]())],
        SelectorError,
        "line 2: ((11, 2), Concat[0, 1]())",
        r"tag 1 is not a non-empty string \(to read several lines, select a list",
        r"with a string tag",
    ),
    bad(
        "duplicate-tag",
        [IN, ((8, 2), nv.Conv2d[-1, "c1"](3)), ((8, 2), nv.Conv2d[-1, "c1"](3))],
        SelectorError,
        "line 2 ('c1'): ((8, 2), Conv2d[-1, 'c1'](3))",
        r"tag 'c1' is already used by line 1",
        r"a tag used once",
    ),
    bad(
        "duplicate-tag-of-an-input",
        [((3, 1), nv.Input["x"]()), ((3, 1), nv.Input["x"]())],
        SelectorError,
        "line 1 ('x'): ((3, 1), Input['x']())",
        r"tag 'x' is already used by line 0",
        r"a tag used once",
    ),
    bad(
        "first-line-not-an-input",
        [((8, 1), nv.Conv2d(3))],
        SelectorError,
        "line 0: ((8, 1), Conv2d(3))",
        r"line 0 has no previous line to take its input from",
        r"an Input\(\) as the first line",
    ),
    bad(
        "first-line-a-plain-module",
        [((3, 1), nn.ReLU())],
        SelectorError,
        "line 0: ((3, 1), ReLU())",
        r"line 0 has no previous line",
        r"an Input\(\) as the first line",
    ),
    bad(
        "selector-none-for-a-conv",
        [IN, ((8, 2), nv.Conv2d[None](3))],
        DefinitionError,
        "line 1: ((8, 2), Conv2d[None](3))",
        r"Conv2d takes 1 input\(s\), but the selector gives 0",
        r"a selector choosing 1 line\(s\)",
    ),
    # ---- multi-output lines
    bad(
        "multi-output-into-conv-without-output",
        [IN, ((3, 1), (3, 1), TwoOutputs()), ((8, 2), nv.Conv2d(3))],
        DefinitionError,
        "line 2: ((8, 2), Conv2d(3))",
        r"Conv2d takes single tensors, but line 1 has 2 outputs",
        r"nv\.output\(1, k\) to pick one of them",
    ),
    bad(
        "output-index-out-of-range",
        [IN, ((3, 1), (3, 1), TwoOutputs[-1, "two"]()), ((8, 2), nv.Conv2d[nv.output("two", 2)](3))],
        SelectorError,
        "line 2: ((8, 2), Conv2d[output('two', 2)](3))",
        r"output\('two', 2\): line 1 has 2 output\(s\)",
        r"an output index in 0\.\.1",
    ),
    bad(
        "output-of-a-missing-line",
        [IN, ((8, 2), nv.Conv2d[nv.output(4, 0)](3))],
        SelectorError,
        "line 1: ((8, 2), Conv2d[output(4, 0)](3))",
        r"selector 4 points to line 4",
        r"an int in -1\.\.0",
    ),
    bad(
        "single-output-nerve-declares-two-dims",
        [IN, ((8, 2), (8, 2), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, 2), (8, 2), Conv2d(3))",
        r"Conv2d makes 1 output\(s\), but the line declares 2 dims",
        r"1 \(channels, shape\) pair\(s\) before the nerve",
    ),
    # ---- the form of a line
    bad(
        "line-not-a-tuple",
        [IN, nv.Conv2d(3)],
        DefinitionError,
        "line 1: Conv2d(3)",
        r"a line must be a tuple of one or more dims followed by a nerve",
        r"\(\(channels, shape\), \.\.\., Nerve\(\.\.\.\)\)",
    ),
    bad(
        "line-a-string",
        [IN, "conv 3x3"],
        DefinitionError,
        "line 1: 'conv 3x3'",
        r"a line must be a tuple",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "line-without-dims",
        [IN, (nv.Conv2d(3),)],
        DefinitionError,
        "line 1: (Conv2d(3),)",
        r"a line must be a tuple of one or more dims followed by a nerve",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "dims-not-a-pair",
        [IN, ((8, 2, 3), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, 2, 3), Conv2d(3))",
        r"dims \(8, 2, 3\) is not a \(channels, shape\) pair",
        r"\(channels, shape\), e\.g\. \(64, 2\)",
    ),
    bad(
        "dims-a-bare-int",
        [IN, (8, nv.Conv2d(3))],
        DimsError,
        "line 1: (8, Conv2d(3))",
        r"dims 8 is not a \(channels, shape\) pair",
        r"\(channels, shape\)",
    ),
    bad(
        "nerve-before-dims",
        [IN, (nv.Conv2d(3), (8, 2))],
        DefinitionError,
        "line 1: (Conv2d(3), (8, 2))",
        r"the nerve must be the last element of its line, after the dims",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "nerve-def-not-last",
        [IN, ((8, 2), nv.Conv2d(3), nn.ReLU())],
        DimsError,
        "line 1: ((8, 2), Conv2d(3), ReLU())",
        r"a nerve definition must be the last element of its line",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "nerve-class-not-called",
        [IN, ((8, 2), nv.Conv2d)],
        DefinitionError,
        "line 1: ((8, 2), Conv2d)",
        r"Conv2d is a class, not a definition: call it, e\.g\. Conv2d\(\.\.\.\)",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "selected-nerve-not-called",
        [IN, ((8, 2), nv.Conv2d[-1])],
        DefinitionError,
        "line 1: ((8, 2), Conv2d[-1])",
        r"Conv2d\[-1\] is not called: write Conv2d\[-1\]\(\.\.\.\)",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "torch-module-class-not-called",
        [IN, ((3, 1), nn.ReLU)],
        DefinitionError,
        "line 1: ((3, 1), ReLU)",
        r"ReLU is a class, not a definition: call it, e\.g\. ReLU\(\.\.\.\)",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "a-string-as-nerve",
        [IN, ((3, 1), "relu")],
        DefinitionError,
        "line 1: ((3, 1), 'relu')",
        r"the last element 'relu' is neither a nerve definition nor an nn\.Module",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    # ---- channels and shapes
    *[
        bad(
            f"channels-{text}",
            [IN, ((channels, 2), nv.Conv2d(3))],
            DimsError,
            f"line 1: (({channels!r}, 2), Conv2d(3))",
            rf"channels {re.escape(repr(channels))} is not a positive int",
            r"dims written as \(channels, shape\) with channels a positive int",
        )
        for text, channels in [("0", 0), ("negative", -1), ("float", 2.5), ("bool", True), ("string", "64")]
    ],
    *[
        bad(
            f"ratio-{text}",
            [IN, ((8, shape), nv.Conv2d(3))],
            DimsError,
            f"line 1: ((8, {shape!r}), Conv2d(3))",
            rf"shape {re.escape(repr(shape))}: ratio {re.escape(repr(bad_value))} is not a positive number",
            r"a positive int or float ratio of the base shape .* an absolute shape string such as '\(1, 1\)'",
        )
        for text, shape, bad_value in [
            ("0", 0, 0),
            ("negative", -2, -2),
            ("nan", float("nan"), float("nan")),
            ("none", None, None),
            ("list", [1, 2], [1, 2]),
            ("tuple-with-0", (1, 0), 0),
            ("empty-tuple", (), ()),
        ]
    ],
    bad(
        "absolute-shape-not-positive",
        [IN, ((8, "(0, 1)"), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, '(0, 1)'), Conv2d(3))",
        r"shape '\(0, 1\)' is not a tuple of positive ints",
        r"an absolute shape written as a literal: '\(1, 1\)', '\(7, 7, 7\)', '7', '\(\)' for vectors \(N, C\),"
        r" or nv.tokens\(ratio, extra=k\) for tokens \(N, L, C\)",
    ),
    bad(
        "absolute-shape-of-floats",
        [IN, ((8, "(1.5, 2)"), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, '(1.5, 2)'), Conv2d(3))",
        r"shape '\(1\.5, 2\)' is not a tuple of positive ints",
        r"an absolute shape written as a literal",
    ),
    bad(
        "shape-garbage",
        [IN, ((8, "seven"), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, 'seven'), Conv2d(3))",
        r"shape 'seven' is not a literal shape",
        r"an absolute shape written as a literal",
    ),
    bad(
        "shape-holding-code",
        [IN, ((8, "__import__('os').system('echo hi')"), nv.Conv2d(3))],
        DimsError,
        """line 1: ((8, "__import__('os').system('echo hi')"), Conv2d(3))""",
        r"""shape "__import__\('os'\)\.system\('echo hi'\)" is not a literal shape""",
        r"an absolute shape written as a literal",
    ),
    bad(
        "ratio-tuple-of-wrong-rank",
        [IN, ((8, (1, 2, 2)), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, (1, 2, 2)), Conv2d(3))",
        r"Conv2d is 2d, but this line declares shape \(1, 2, 2\), which has 3 dims",
        r"shapes of 2 values \(or one value for every dim\), or a 3d nerve",
    ),
    bad(
        "absolute-shape-of-wrong-rank",
        [IN, ((8, "(1, 1, 1)"), nv.Conv2d(3))],
        DimsError,
        "line 1: ((8, '(1, 1, 1)'), Conv2d(3))",
        r"Conv2d is 2d, but this line declares shape '\(1, 1, 1\)', which has 3 dims",
        r"shapes of 2 values \(or one value for every dim\), or a 3d nerve",
    ),
    bad(
        "conv1d-after-a-2d-input",
        [((3, (1, 1)), nv.Input()), ((8, 2), nv.Conv1d(3))],
        DimsError,
        "line 1: ((8, 2), Conv1d(3))",
        r"Conv1d is 1d, but its input line 0 is 2d",
        r"Conv2d after a 2d line, or 1d lines before Conv1d",
    ),
    bad(
        "pool2d-after-a-conv1d-line",
        [IN, ((8, 2), nv.Conv1d(3)), ((8, 4), nv.MaxPool2d(3))],
        DimsError,
        "line 2: ((8, 4), MaxPool2d(3))",
        r"MaxPool2d is 2d, but its input line 1 is 1d",
        r"MaxPool1d after a 1d line, or 2d lines before MaxPool2d",
    ),
    bad(
        "conv3d-after-a-conv2d-line",
        [IN, ((8, 2), nv.Conv2d(3)), ((8, 4), nv.Conv3d(3))],
        DimsError,
        "line 2: ((8, 4), Conv3d(3))",
        r"Conv3d is 3d, but its input line 1 is 2d",
        r"Conv2d after a 2d line",
    ),
    bad(
        "a-1d-norm-in-a-2d-conv",
        [IN, ((8, 2), nv.Conv2d(3, norm=nn.BatchNorm1d))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, norm=BatchNorm1d))",
        r"Conv2d: norm=BatchNorm1d is 1d, but the conv is 2d",
        r"a 2d norm \(nn.BatchNorm2d\) or one of any rank \(functools.partial\(nn.GroupNorm, 8\)\)",
    ),
    bad(
        "linear-interpolation-of-a-2d-line",
        [IN, ((8, 2), nv.Conv2d(3)), ((8, 1), nv.Interpolate("linear"))],
        NerveArgumentError,
        "line 2: ((8, 1), Interpolate('linear'))",
        r"mode='linear' is for 1d inputs, but line 1 is 2d",
        r"'bilinear', 'bicubic'",
    ),
    # ---- derived arithmetic
    bad(
        "non-integer-stride",
        [IN, ((8, 3), nv.Conv2d(3)), ((8, 4), nv.Conv2d(3))],
        DimsError,
        "line 2: ((8, 4), Conv2d(3))",
        r"ratio 3 -> 4 needs a stride of 1\.33333, which is not an integer",
        r"an output ratio that is a whole multiple of the input ratio \(e\.g\. 4 -> 8\)",
    ),
    bad(
        "plain-conv-asked-to-upsample",
        [IN, ((8, 4), nv.Conv2d(3)), ((8, 2), nv.Conv2d(3))],
        DimsError,
        "line 2: ((8, 2), Conv2d(3))",
        r"ratio 4 -> 2 would upsample, which a plain conv or pool cannot do",
        r"to upsample use ConvTransposed or Interpolate",
    ),
    bad(
        "pool-asked-to-upsample",
        [IN, ((8, 4), nv.Conv2d(3)), ((8, 2), nv.MaxPool2d(3))],
        DimsError,
        "line 2: ((8, 2), MaxPool2d(3))",
        r"MaxPool2d keeps or shrinks its input: ratio 4 -> 2 grows it",
        r"to grow a map use Interpolate or ConvTransposed",
    ),
    bad(
        "transposed-non-integer-upsampling",
        [IN, ((8, 3), nv.Conv2d(3)), ((8, 2), nv.ConvTransposed2d(3))],
        DimsError,
        "line 2: ((8, 2), ConvTransposed2d(3))",
        r"ratio 3 -> 2 needs an upsampling factor of 1\.5, which is not an integer",
        r"a transposed conv upsamples by a whole factor",
    ),
    bad(
        "absolute-sizes-no-stride-fits",
        [IN, ((3, "(4, 4)"), nv.AvgPool2d()), ((3, "(3, 3)"), nv.MaxPool2d(3))],
        DimsError,
        "line 2: ((3, '(3, 3)'), MaxPool2d(3))",
        r"no stride takes a conv or pool from size \(4, 4\) to \(3, 3\)",
        r"ceil\(input / stride\) == output",
    ),
    # ---- nerve arguments
    bad(
        "groups-not-dividing-input-channels",
        [IN, ((8, 2), nv.Conv2d(3, groups=2))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, groups=2))",
        r"Conv2d: input channels \(=3\) must be divisible by groups \(=2\)",
        r"groups dividing both the input and the output channels",
    ),
    bad(
        "groups-not-dividing-output-channels",
        [((4, 1), nv.Input()), ((6, 2), nv.Conv2d(3, groups=4))],
        NerveArgumentError,
        "line 1: ((6, 2), Conv2d(3, groups=4))",
        r"Conv2d: output channels \(=6\) must be divisible by groups \(=4\)",
        r"groups dividing both",
    ),
    bad(
        "groups-zero",
        [IN, ((8, 2), nv.Conv2d(3, groups=0))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, groups=0))",
        r"Conv2d: groups=0 is not a positive int",
        r"groups >= 1",
    ),
    bad(
        "kernel-tuple-of-wrong-rank",
        [IN, ((8, 2), nv.Conv2d((3, 3, 3)))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d((3, 3, 3)))",
        r"Conv2d: kernel_size=\(3, 3, 3\) is not a positive int or a tuple of 2",
        r"kernel_size as an int >= 1 or a tuple of 2 such ints \(Conv2d is 2d\)",
    ),
    bad(
        "kernel-zero",
        [IN, ((8, 2), nv.Conv2d(0))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(0))",
        r"Conv2d: kernel_size=0 is not a positive int",
        r"kernel_size as an int >= 1",
    ),
    bad(
        "kernel-negative",
        [IN, ((8, 2), nv.Conv2d_BN_ReLU(-3))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d_BN_ReLU(-3))",
        r"Conv2d_BN_ReLU: kernel_size=-3 is not a positive int",
        r"kernel_size as an int >= 1",
    ),
    bad(
        "kernel-a-string",
        [IN, ((8, 2), nv.Conv2d("3"))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d('3'))",
        r"Conv2d: kernel_size='3' is not a positive int",
        r"kernel_size as an int >= 1",
    ),
    bad(
        "pool-kernel-zero",
        [IN, ((3, 2), nv.MaxPool2d(0))],
        NerveArgumentError,
        "line 1: ((3, 2), MaxPool2d(0))",
        r"MaxPool2d: kernel_size=0 is not a positive int",
        r"\(MaxPool2d is 2d\)",
    ),
    bad(
        "dilation-zero",
        [IN, ((8, 2), nv.Conv2d(3, dilation=0))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, dilation=0))",
        r"Conv2d: dilation=0 is not a positive int",
        r"dilation as an int >= 1",
    ),
    bad(
        "unknown-keyword",
        [IN, ((8, 2), nv.Conv2d(3, strides=2))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, strides=2))",
        r"Conv2d: got an unexpected keyword argument 'strides'",
        r"Conv2d\(kernel_size, \*, dilation=1, groups=1, bias=None, norm=None, act=None, norm_after_act=False, padding_mode='zeros', padding='same'\)",
    ),
    bad(
        "unknown-keyword-shows-what-the-defaults-mean",  # not norm=DEFAULT or act=<class '...ReLU'>
        [IN, ((8, 2), nv.Conv2d_BN_ReLU(3, stride=2))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d_BN_ReLU(3, stride=2))",
        r"Conv2d_BN_ReLU: got an unexpected keyword argument 'stride'",
        r"Conv2d_BN_ReLU\(kernel_size, \*, .*norm=BatchNorm2d, act=ReLU, norm_after_act=False, padding_mode='zeros', padding='same'\)",
    ),
    bad(
        "unknown-keyword-of-squeeze-excitation",
        [IN, ((8, 2), nv.SqueezeExcitation(4, bad=1))],
        NerveArgumentError,
        "line 1: ((8, 2), SqueezeExcitation(4, bad=1))",
        r"SqueezeExcitation: got an unexpected keyword argument 'bad'",
        r"SqueezeExcitation\(squeeze_channels, \*, act=ReLU, scale_act=Sigmoid\)$",
    ),
    bad(
        "too-many-positional-arguments",
        [IN, ((8, 2), nv.Conv2d(3, 1, 1, True, None, None, False, "zeros", 5))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, 1, 1, True, None, None, False, 'zeros', 5))",
        r"Conv2d: too many positional arguments \(channels, stride and padding come from the line's dims",
        r"Conv2d\(kernel_size, \*, dilation=1, groups=1,",
    ),
    bad(
        "missing-kernel-size",
        [IN, ((8, 2), nv.Conv2d())],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d())",
        r"Conv2d: missing a required argument: 'kernel_size'",
        r"Conv2d\(kernel_size,",
    ),
    bad(
        "unknown-keyword-of-pool",
        [IN, ((3, 2), nv.AvgPool2d(3, stride=2))],
        NerveArgumentError,
        "line 1: ((3, 2), AvgPool2d(3, stride=2))",
        r"AvgPool2d: got an unexpected keyword argument 'stride'",
        r"AvgPool2d\(kernel_size=None, count_include_pad=False, \*, padding='same', ceil_mode=False\)",
    ),
    bad(
        "padding-mode-invalid",
        [IN, ((8, 2), nv.Conv2d(3, padding_mode="mirror"))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, padding_mode='mirror'))",
        r"Conv2d: padding_mode='mirror'",
        r"'zeros', 'reflect', 'replicate', 'circular'",
    ),
    bad(
        "transposed-with-reflect-padding",
        [IN, CONV, ((8, 1), nv.ConvTransposed2d(3, padding_mode="reflect"))],
        NerveArgumentError,
        "line 2: ((8, 1), ConvTransposed2d(3, padding_mode='reflect'))",
        r"ConvTransposed2d: padding_mode='reflect', but a transposed conv only pads with zeros",
        r"padding_mode='zeros'",
    ),
    bad(
        "bias-not-a-bool",
        [IN, ((8, 2), nv.Conv2d(3, bias="yes"))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, bias='yes'))",
        r"Conv2d: bias='yes' is not a bool",
        r"bias=True, False or None",
    ),
    bad(
        "norm-not-callable",
        [IN, ((8, 2), nv.Conv2d(3, norm="bn"))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, norm='bn'))",
        r"Conv2d: norm='bn' is not callable",
        r"norm=nn\.BatchNorm2d, a callable or None",
    ),
    bad(
        "act-not-callable",
        [IN, ((8, 2), nv.Conv2d(3, act="relu"))],
        NerveArgumentError,
        "line 1: ((8, 2), Conv2d(3, act='relu'))",
        r"Conv2d: act='relu' is not callable",
        r"act=nn\.ReLU, a callable or None",
    ),
    # ---- nerves that keep channels or shapes
    bad(
        "pool-changes-channels",
        [IN, ((8, 2), nv.MaxPool2d(3))],
        DimsError,
        "line 1: ((8, 2), MaxPool2d(3))",
        r"MaxPool2d keeps the channels, but the line turns 3 into 8",
        r"3 channels on this line",
    ),
    bad(
        "adaptive-pool-changes-channels",
        [IN, ((8, "(1, 1)"), nv.AvgPool2d())],
        DimsError,
        "line 1: ((8, '(1, 1)'), AvgPool2d())",
        r"AvgPool2d keeps the channels, but the line turns 3 into 8",
        r"3 channels on this line",
    ),
    bad(
        "interpolate-changes-channels",
        [IN, ((8, 2), nv.Interpolate())],
        DimsError,
        "line 1: ((8, 2), Interpolate())",
        r"Interpolate keeps the channels, but the line turns 3 into 8",
        r"3 channels on this line",
    ),
    bad(
        "interpolate-unknown-mode",
        [IN, ((3, 2), nv.Interpolate("cubic"))],
        NerveArgumentError,
        "line 1: ((3, 2), Interpolate('cubic'))",
        r"Interpolate: mode='cubic'",
        r"'nearest', 'linear', 'bilinear', 'bicubic', 'trilinear', 'area', 'nearest-exact'",
    ),
    bad(
        "interpolate-align-corners-with-nearest",
        [IN, ((3, 2), nv.Interpolate("nearest", align_corners=True))],
        NerveArgumentError,
        "line 1: ((3, 2), Interpolate('nearest', align_corners=True))",
        r"Interpolate: align_corners=True with mode='nearest'",
        r"align_corners=None, or True/False with mode 'linear', 'bilinear', 'bicubic', 'trilinear'",
    ),
    bad(
        "identity-changes-shape",
        [IN, ((3, 2), nv.Identity())],
        DimsError,
        "line 1: ((3, 2), Identity())",
        r"Identity keeps the shape, but line 0 has shape 1, not 2",
        r"shape 1 on this line",
    ),
    bad(
        "identity-changes-channels",
        [IN, ((4, 1), nv.Identity())],
        DimsError,
        "line 1: ((4, 1), Identity())",
        r"Identity keeps the channels, but the line turns 3 into 4",
        r"3 channels on this line",
    ),
    # ---- merges
    bad(
        "add-channels-mismatch",
        [IN, ((8, 2), nv.Conv2d[-1, "a"](3)), ((16, 2), nv.Conv2d(3)), ((8, 2), nv.Add[["a", -1]]())],
        DimsError,
        "line 3: ((8, 2), Add[['a', -1]]())",
        r"Add needs every input to have the declared dims \(8, 2\), but line 2 \(16, 2\) differs",
        r"inputs with equal channels and equal shapes",
    ),
    bad(
        "add-shape-mismatch",
        [IN, ((8, 2), nv.Conv2d[-1, "a"](3)), ((8, 4), nv.Conv2d(3)), ((8, 4), nv.Add[["a", -1]]())],
        DimsError,
        "line 3: ((8, 4), Add[['a', -1]]())",
        r"Add needs every input to have the declared dims \(8, 4\), but line 1 \(8, 2\) differs",
        r"inputs with equal channels and equal shapes",
    ),
    bad(
        "add-with-one-input",
        [IN, CONV, ((8, 2), nv.Add())],
        DimsError,
        "line 2: ((8, 2), Add())",
        r"Add sums two or more lines, but 1 is selected",
    ),
    bad(
        "concat-channel-sum-mismatch",
        [IN, CONV, CONV, ((15, 2), nv.Concat[[-2, -1]]())],
        DimsError,
        "line 3: ((15, 2), Concat[[-2, -1]]())",
        r"Concat of 8 \+ 8 = 16 channels, but the line declares 15",
        r"channels 16",
    ),
    bad(
        "concat-shape-mismatch",
        [IN, CONV, ((8, 4), nv.Conv2d(3)), ((16, 4), nv.Concat[1:]())],
        DimsError,
        "line 3: ((16, 4), Concat[1:]())",
        r"Concat needs every input at the declared shape 4, but line 1 \(8, 2\) differs",
        r"inputs at the same shape",
    ),
    bad(
        "concat-of-nothing",
        [IN, ((8, 2), nv.Concat[None]())],
        DimsError,
        "line 1: ((8, 2), Concat[None]())",
        r"Concat needs at least one selected line",
    ),
    bad(
        "skip-connect-with-one-input",
        [IN, CONV, ((8, 2), nv.SkipConnect2d())],
        DefinitionError,
        "line 2: ((8, 2), SkipConnect2d())",
        r"SkipConnect2d takes 2 input\(s\), but the selector gives 1",
        r"a selector choosing 2 line\(s\)",
    ),
    bad(
        "skip-connect-with-three-inputs",
        [IN, CONV, CONV, ((8, 2), nv.SkipConnect2d[[0, 1, 2]]())],
        DefinitionError,
        "line 3: ((8, 2), SkipConnect2d[[0, 1, 2]]())",
        r"SkipConnect2d takes 2 input\(s\), but the selector gives 3",
        r"a selector choosing 2 line\(s\)",
    ),
    bad(
        "skip-connect-dims-not-its-to-input",
        [IN, CONV, ((16, 2), nv.SkipConnect2d[[0, 1]]())],
        DimsError,
        "line 2: ((16, 2), SkipConnect2d[[0, 1]]())",
        r"SkipConnect2d adds into line 1 \(8, 2\), so the line must declare those dims, not \(16, 2\)",
        r"\(8, 2\) on this line",
    ),
    # ---- Input lines
    bad(
        "input-with-a-selector",
        [IN, ((3, 1), nv.Input[0]())],
        SelectorError,
        "line 1: ((3, 1), Input[0]())",
        r"an Input selects nothing, but 0 was given",
        r"Input\(\) or Input\['tag'\]\(\)",
    ),
    bad(
        "input-with-a-selector-and-tag",
        [IN, ((3, 1), nv.Input[-1, "x"]())],
        SelectorError,
        "line 1 ('x'): ((3, 1), Input[-1, 'x']())",
        r"an Input selects nothing, but -1 was given",
        r"Input\(\) or Input\['tag'\]\(\)",
    ),
    bad(
        "input-base-shape-not-a-bool",
        [IN, ((3, 1), nv.Input(base_shape=1))],
        NerveArgumentError,
        "line 1: ((3, 1), Input(base_shape=1))",
        r"base_shape=1 is not a bool",
        r"Input\(base_shape=True\)",
    ),
    bad(
        "two-base-inputs",
        [((3, 1), nv.Input(base_shape=True)), ((3, 1), nv.Input(base_shape=True))],
        DefinitionError,
        "line 1: ((3, 1), Input(base_shape=True))",
        r"line 0 is already the base Input",
        r"at most one Input\(base_shape=True\)",
    ),
    bad(
        "base-input-with-ratio-2",
        [IN, ((3, 2), nv.Input(base_shape=True))],
        DefinitionError,
        "line 1: ((3, 2), Input(base_shape=True))",
        r"the base Input declares ratio 2, but ratios are relative to it",
        r"ratio 1 \(or an absolute shape\) for the base Input",
    ),
    bad(
        "input-with-two-dims",
        [((3, 1), (3, 1), nv.Input())],
        DefinitionError,
        "line 0: ((3, 1), (3, 1), Input())",
        r"an Input has one output, but 2 dims were declared",
    ),
    bad(
        "input-not-called",
        [((3, 1), nv.Input)],
        DefinitionError,
        "line 0: ((3, 1), Input)",
        r"Input is a class, not a definition: call it, e\.g\. Input\(\.\.\.\)",
        r"\(\(channels, shape\), \.\.\., Nerve",
    ),
    bad(
        "input-inside-a-nerve",
        [IN, ((3, 1), InputInside())],
        DefinitionError,
        "line 1 > line 1: ((3, 1), Input())",
        r"Input lines belong to the top level of a network",
        r"inside a nerve, lines 0\.\. are already the nerve's own inputs",
    ),
    # ---- user nerves
    bad(
        "user-nerve-raises-in-init",
        [IN, CONV, ((8, 2), Raises(5))],
        DefinitionError,
        "line 2: ((8, 2), Raises(5))",
        r"Raises\(\.\.\.\) raised ValueError: k=5 is not supported",
    ),
    bad(
        "user-nerve-forgets-super-init",
        [IN, ((8, 2), NoSuper())],
        DefinitionError,
        "line 1: ((8, 2), NoSuper())",
        r"NoSuper\.__init__ did not call super\(\)\.__init__\(\)",
        r"a Nerve subclass calls super\(\)\.__init__\(\) first",
    ),
    bad(
        "user-nerve-reads-before-super-init",
        [IN, ((8, 2), ReadsBeforeSuper())],
        DefinitionError,
        "line 1: ((8, 2), ReadsBeforeSuper())",
        r"ReadsBeforeSuper\(\.\.\.\) raised AttributeError: .*target_dims",
        r"a Nerve subclass calls super\(\)\.__init__\(\) first",
    ),
    bad(
        "user-nerve-assigns-a-module-before-super-init",
        [IN, ((8, 2), SubmoduleBeforeSuper())],
        DefinitionError,
        "line 1: ((8, 2), SubmoduleBeforeSuper())",
        r"cannot assign module before Module\.__init__\(\) call",
        r"a Nerve subclass calls super\(\)\.__init__\(\) first",
    ),
    bad(
        "user-nerve-misses-its-own-attribute",  # no hint about super().__init__(): it was called
        [IN, ((8, 2), MissingAttribute())],
        DefinitionError,
        "line 1: ((8, 2), MissingAttribute())",
        r"MissingAttribute\(\.\.\.\) raised AttributeError: .*height",
        None,
    ),
    bad(
        "user-nerve-without-forward-or-add",
        [IN, ((8, 2), Nothing())],
        DefinitionError,
        "line 1: ((8, 2), Nothing())",
        r"Nothing neither defines forward\(\) nor adds lines with self\.add\(\)",
    ),
    bad(
        "user-nerve-adds-no-lines",
        [IN, ((8, 2), AddsNothing())],
        DefinitionError,
        "line 1: ((8, 2), AddsNothing())",
        r"AddsNothing added no lines",
    ),
    bad(
        "user-nerve-last-sub-line-differs",
        [IN, ((8, 2), LastDiffers())],
        DimsError,
        "line 1: ((8, 2), LastDiffers())",
        r"LastDiffers's last sub-line declares \(16, 2\), but its line declares \(8, 2\)",
        r"a last sub-line declaring the dims of the nerve's own line",
    ),
    bad(
        "user-nerve-forward-takes-fewer-inputs",
        [IN, ((3, 1), nv.Identity()), ((3, 1), OneInput[[0, 1]]())],
        DefinitionError,
        "line 2: ((3, 1), OneInput[[0, 1]]())",
        r"OneInput\.forward\(x\) cannot take the 2 selected input\(s\)",
        r"a selector choosing as many lines as forward\(\) takes inputs",
    ),
    bad(
        "error-in-a-sub-line",
        [IN, CONV, CONV, ((8, 2), BadStride())],
        DimsError,
        "line 3 > line 2: ((8, 3), Conv2d(3))",
        r"ratio 2 -> 3 needs a stride of 1\.5, which is not an integer",
        r"a whole multiple of the input ratio",
    ),
    bad(
        "error-in-a-tagged-nerve-sub-line",
        [IN, CONV, ((8, 2), BadStride[-1, "block"]())],
        DimsError,
        "line 2 ('block') > line 2: ((8, 3), Conv2d(3))",
        r"ratio 2 -> 3 needs a stride of 1\.5",
        r"a whole multiple of the input ratio",
    ),
    bad(
        "error-nested-two-deep",
        [IN, ((8, 2), nv.Conv2d[-1, "nope2"](3)), ((8, 2), Outer())],
        SelectorError,
        "line 2 > line 1 > line 1: ((8, 2), Conv2d['nope'](3))",
        r"no earlier line is tagged 'nope'$",
        r"a tag given earlier",
    ),
    bad(
        "user-nerve-in-a-sub-line-raises",
        [IN, ((8, 2), nv.Conv2d(3)), ((8, 2), Wraps())],
        DefinitionError,
        "line 2 > line 1: ((8, 2), Raises(7))",
        r"Raises\(\.\.\.\) raised ValueError: k=7 is not supported",
    ),
]


INVALID_BY_ID = {param.id: param.values[0] for param in INVALID}


def test_the_table_is_large_enough():
    assert len(INVALID) >= 35


@pytest.mark.parametrize(("lines", "error", "where", "reason", "allowed"), INVALID)
def test_invalid_definition(lines, error, where, reason, allowed):
    with pytest.raises(error, match=re.escape(where)) as info:
        nv.build(lines)
    err = info.value
    # the class, or its subclass that is also what Python raises for the same mistake (issue 20)
    python = {
        neurlink.UnexpectedArgumentError: TypeError,
        neurlink.SelectorIndexError: IndexError,
        neurlink.UnknownTagError: KeyError,
        neurlink.SelectorTypeError: TypeError,
    }.get(type(err))
    assert type(err) is error or (python is not None and type(err).__bases__[0] is error), (
        f"{type(err).__name__} raised, {error.__name__} expected"
    )
    assert isinstance(err, NeurlinkError) and isinstance(err, DefinitionError)
    others = tuple(
        e for e in (KeyError, IndexError, TypeError, ValueError, AssertionError, RuntimeError) if e is not python
    )
    assert not isinstance(err, others)
    text = str(err)
    header, reason_line, *rest = text.split("\n")
    # the path and the line as written come first, then what is wrong, then what is allowed
    assert header == where
    assert re.search(reason, reason_line.strip()), reason_line
    assert reason_line.startswith("    ")
    if allowed is None:
        assert "allowed:" not in text
    else:
        assert len(rest) == 1 and rest[0].startswith("    allowed: "), text
        assert re.search(allowed, rest[0]), rest[0]
    assert err.path == header.split(": ")[0]


# --- the points the table cannot show ----------------------------------------------------------


def test_unknown_tag_is_never_a_new_tag():
    # "c1" is only selected (never defined): the line is an error, not a line that creates "c1"
    with pytest.raises(SelectorError, match=r"no earlier line is tagged 'c1'"):
        nv.build([IN, ((8, 2), nv.Conv2d["c1"](3)), ((8, 4), nv.Conv2d["c1"](3))])
    # while an Input's key is its tag, which the network then knows
    net = nv.build([((3, 1), nv.Input["img"]()), ((8, 2), nv.Conv2d["img"](3))])
    assert net.lines[0].tag == "img" and net.lines[1].tag is None


def test_user_nerve_error_is_chained_to_the_line():
    with pytest.raises(DefinitionError) as info:
        nv.build([IN, CONV, ((8, 2), Raises(5))])
    err = info.value
    assert isinstance(err.__cause__, ValueError)
    assert str(err.__cause__) == "k=5 is not supported"
    assert err.where == [(2, None, "((8, 2), Raises(5))")]


def test_user_nerve_error_deep_inside_is_chained():
    with pytest.raises(DefinitionError, match=r"^line 2 > line 1: \(\(8, 2\), Raises\(7\)\)") as info:
        nv.build(INVALID_BY_ID["user-nerve-in-a-sub-line-raises"])
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "code",
    [
        "__import__('os').system('touch {path}')",
        "open({path!r}, 'w').close()",
        "(lambda: open({path!r}, 'w'))()",
        "[open({path!r}, 'w')][0]",
    ],
)
def test_a_shape_holding_code_runs_nothing(tmp_path, capfd, code):
    path = str(tmp_path / "ran")
    shape = code.format(path=path)
    with pytest.raises(DimsError, match=r"is not a literal shape"):
        nv.build([IN, ((8, shape), nv.Conv2d(3))])
    with pytest.raises(DimsError, match=r"is not a literal shape"):
        nv.Dims(8, shape)
    assert not (tmp_path / "ran").exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DimsError, match=r"echo hi"):
        nv.build([IN, ((8, "__import__('os').system('echo hi')"), nv.Conv2d(3))])
    assert "hi" not in capfd.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((("line", IN),), r"build\(\) takes a list of lines, got tuple"),
        ((IN,), r"build\(\) takes a list of lines, got tuple"),
        (("((3, 1), nv.Input())",), r"build\(\) takes a list of lines, got str"),
    ],
)
def test_build_takes_a_list(arguments, message):
    with pytest.raises(DefinitionError, match=message) as info:
        nv.build(*arguments)
    assert "allowed: nv.build([line, line, ...])" in str(info.value)


@pytest.mark.parametrize(
    "lines",
    [[], [[], [[]]], [((3, "(2, 2)"), Constant[None]())]],
)
def test_a_network_needs_an_input(lines):
    with pytest.raises(DefinitionError, match=r"a network needs at least one nv\.Input\(\) line"):
        nv.build(lines)


def test_a_line_error_is_raised_before_the_missing_input():
    with pytest.raises(DefinitionError, match=r"^line 0: .*Conv2d\[None\]\(3\)"):
        nv.build([((8, 1), nv.Conv2d[None](3))])


def test_definition_error_pickles_with_its_location():
    for case in ("error-nested-two-deep", "unknown-keyword", "duplicate-tag"):
        with pytest.raises(DefinitionError) as info:
            nv.build(INVALID_BY_ID[case])
        err = info.value
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err)
        assert str(copy) == str(err)
        assert copy.where == err.where and copy.path == err.path
        assert (copy.reason, copy.allowed) == (err.reason, err.allowed)
    unlocated = SelectorError("no line", allowed="a tag")
    assert str(pickle.loads(pickle.dumps(unlocated))) == str(unlocated)


def test_every_error_class_is_a_neurlink_error():
    for cls in (DefinitionError, SelectorError, DimsError, NerveArgumentError, InputError):
        assert issubclass(cls, NeurlinkError)
        assert not issubclass(cls, (KeyError, TypeError, ValueError, AssertionError))
    assert neurlink.NeurlinkError is NeurlinkError


# --- forward-time errors -----------------------------------------------------------------------


def _two_input_net():
    return nv.build(
        [
            ((3, 1), nv.Input["img"]()),
            ((1, 2), nv.Input["mask"]()),
            ((8, 2), nv.Conv2d["img"](3)),
            ((9, 2), nv.Concat[[-1, "mask"]]()),
        ]
    )


IMG_LINE = re.escape("line 0 ('img') ((3, 1), Input['img']())")
MASK_LINE = re.escape("line 1 ('mask') ((1, 2), Input['mask']())")
BOTH_LINES = IMG_LINE + ", " + MASK_LINE


def _img(*spatial, channels=3):
    return torch.randn(2, channels, *spatial)


def _mask(*spatial, channels=1):
    return torch.randn(2, channels, *spatial)


FORWARD_MISTAKES = [
    pytest.param(lambda: _img(16, 16), rf"got 1 input\(s\), but the network has 2: {BOTH_LINES}", id="one-tensor"),
    pytest.param(lambda: [_img(16, 16)], rf"got 1 input\(s\), but the network has 2: {BOTH_LINES}", id="too-few"),
    pytest.param(
        lambda: [_img(16, 16), _mask(8, 8), _mask(8, 8)],
        rf"got 3 input\(s\), but the network has 2: {BOTH_LINES}",
        id="too-many",
    ),
    pytest.param(lambda: [], r"got 0 input\(s\), but the network has 2", id="none"),
    pytest.param(
        lambda: [_img(16, 16, channels=4), _mask(8, 8)],
        IMG_LINE
        + re.escape(": expected a tensor of shape (N, 3, *, *), got (2, 4, 16, 16): ")
        + r"4 channels, but the line declares 3",
        id="wrong-channels",
    ),
    pytest.param(
        lambda: [_img(16, 16), _mask(8, 8, channels=2)],
        MASK_LINE
        + re.escape(": expected a tensor of shape (N, 1, *, *), got (2, 2, 8, 8): ")
        + r"2 channels, but the line declares 1",
        id="wrong-channels-second-input",
    ),
    pytest.param(
        lambda: [_img(16), _mask(8, 8)],
        IMG_LINE
        + re.escape(": expected a tensor of shape (N, 3, *, *), got (2, 3, 16): ")
        + r"2 spatial dim\(s\) expected",
        id="3d-tensor-into-conv2d",
    ),
    pytest.param(
        lambda: [_img(16, 16, 16), _mask(8, 8)],
        IMG_LINE + re.escape(": expected a tensor of shape (N, 3, *, *), got (2, 3, 16, 16, 16)"),
        id="5d-tensor-into-conv2d",
    ),
    pytest.param(
        lambda: [_img(16, 16), _mask(7, 8)],
        MASK_LINE
        + re.escape(": expected a tensor of shape (N, 1, *, *), got (2, 1, 7, 8): ")
        + re.escape("the line declares ratio 2 of the base shape (16, 16), that is (8, 8)"),
        id="contradicts-declared-ratio",
    ),
    pytest.param(
        lambda: [_img(16, 16), _mask(16, 16)],
        MASK_LINE + r".*got \(2, 1, 16, 16\): the line declares ratio 2 of the base shape \(16, 16\), that is \(8, 8\)",
        id="second-input-at-base-size",
    ),
    pytest.param(
        lambda: [_img(16, 16).numpy(), _mask(8, 8)],
        IMG_LINE + re.escape(": expected a torch.Tensor of shape (N, 3, *, *), got ndarray of shape (2, 3, 16, 16)"),
        id="numpy-array",
    ),
    pytest.param(
        lambda: [[[1.0, 2.0], [3.0, 4.0]], _mask(8, 8)],
        IMG_LINE + re.escape(": expected a torch.Tensor of shape (N, 3, *, *), got list"),
        id="list-of-lists",
    ),
    pytest.param(
        lambda: [_img(16, 16), None],
        MASK_LINE + re.escape(": expected a torch.Tensor of shape (N, 1, *, *), got NoneType"),
        id="none-as-second-input",
    ),
    pytest.param(
        lambda: np.zeros((2, 3, 16, 16), dtype=np.float32),
        r"the network takes a tensor or a list of tensors \(one per Input line\), got ndarray",
        id="numpy-array-for-two-inputs",
    ),
]


@pytest.fixture(scope="module")
def two_input_net():
    return _two_input_net()


def _check_still_works(net):
    y = net([_img(16, 16), _mask(8, 8)])
    assert y.shape == (2, 9, 8, 8)
    y = net([_img(9, 13), _mask(5, 7)])
    assert y.shape == (2, 9, 5, 7)


@pytest.mark.parametrize(("make_inputs", "message"), FORWARD_MISTAKES)
def test_forward_error_names_the_input_line(two_input_net, make_inputs, message):
    net = two_input_net
    for call in (net, net.forward, lambda x: net(x, output_intermediate=True), lambda x: net(x, outputs=["mask"])):
        with pytest.raises(InputError, match=message) as info:
            call(make_inputs())
        assert isinstance(info.value, NeurlinkError) and not isinstance(info.value, DefinitionError)
        _check_still_works(net)


ONE_INPUT_MISTAKES = [
    pytest.param(
        lambda: torch.randn(1, 3, 8),
        re.escape("line 0 ((3, 1), Input()): expected a tensor of shape (N, 3, *, *), got (1, 3, 8): ")
        + r"2 spatial dim\(s\) expected",
        id="3d-tensor",
    ),
    pytest.param(
        lambda: torch.randn(3, 8, 8),
        re.escape("line 0 ((3, 1), Input()): expected a tensor of shape (N, 3, *, *), got (3, 8, 8)"),
        id="no-batch-dim",
    ),
    pytest.param(
        lambda: torch.randn(1, 1, 8, 8),
        re.escape("line 0 ((3, 1), Input()): expected a tensor of shape (N, 3, *, *), got (1, 1, 8, 8): ")
        + r"1 channels, but the line declares 3",
        id="grey-image",
    ),
    pytest.param(
        lambda: np.zeros((1, 3, 8, 8), dtype=np.float32),
        re.escape("line 0 ((3, 1), Input()): expected a torch.Tensor of shape (N, 3, *, *), ")
        + re.escape("got ndarray of shape (1, 3, 8, 8)"),
        id="numpy-array",
    ),
    pytest.param(
        lambda: [[[[0.0] * 8] * 8] * 3],
        re.escape("line 0 ((3, 1), Input()): expected a torch.Tensor of shape (N, 3, *, *), got list"),
        id="nested-lists",
    ),
    pytest.param(
        lambda: [torch.randn(1, 3, 8, 8)] * 2,
        re.escape("got 2 input(s), but the network has 1: line 0 ((3, 1), Input())"),
        id="two-tensors",
    ),
]


@pytest.mark.parametrize(("make_inputs", "message"), ONE_INPUT_MISTAKES)
def test_forward_error_one_input(make_inputs, message):
    net = nv.build([IN, ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 4), nv.MaxPool2d(3))])
    net.eval()
    with pytest.raises(InputError, match=message):
        net(make_inputs())
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 8, 2, 2)
    assert net(torch.randn(1, 3, 13, 9)).shape == (1, 8, 4, 3)


def test_forward_error_absolute_input_and_base_input():
    net = nv.build([((3, "(8, 8)"), nv.Input()), ((8, "(4, 4)"), nv.Conv2d(3))])
    with pytest.raises(InputError, match=r"got \(1, 3, 9, 9\): the line declares the absolute shape '\(8, 8\)'"):
        net(torch.randn(1, 3, 9, 9))
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 8, 4, 4)

    # with base_shape=True on the second Input, the first one is checked against it
    net = nv.build(
        [
            ((1, 2), nv.Input["small"]()),
            ((3, 1), nv.Input["big"](base_shape=True)),
            ((3, 2), nv.MaxPool2d["big"](2)),
            ((4, 2), nv.Concat[["small", -1]]()),
        ]
    )
    with pytest.raises(
        InputError, match=r"line 0 \('small'\) .*ratio 2 of the base shape \(10, 10\), that is \(5, 5\)"
    ):
        net([torch.randn(1, 1, 10, 10), torch.randn(1, 3, 10, 10)])
    assert net([torch.randn(1, 1, 5, 5), torch.randn(1, 3, 10, 10)]).shape == (1, 4, 5, 5)


def test_outputs_unknown_tag_suggests(two_input_net):
    net = two_input_net
    good = [_img(16, 16), _mask(8, 8)]
    with pytest.raises(NeurlinkError, match=r"no line is tagged 'imgg'; did you mean 'img'\?") as info:
        net(good, outputs=["imgg"])
    assert isinstance(info.value, KeyError) and not isinstance(info.value, ValueError)  # as a dict lookup raises
    with pytest.raises(NeurlinkError, match=r"9 names no line of this network \(4 lines\)"):
        net(good, outputs=[9])
    with pytest.raises(NeurlinkError, match=r"-5 names no line"):
        net(good, outputs=["img", -5])
    with pytest.raises(NeurlinkError, match=r"outputs='img' must be a list of tags or line indices"):
        net(good, outputs="img")
    with pytest.raises(NeurlinkError, match=r"give output_intermediate=True or outputs=\[\.\.\.\], not both"):
        net(good, outputs=["img"], output_intermediate=True)
    img, last = net(good, outputs=["img", -1])
    assert img.shape == (2, 3, 16, 16) and last.shape == (2, 9, 8, 8)
    _check_still_works(net)


def test_errors_are_also_the_python_exceptions_code_catches():
    """Each still a NeurlinkError naming the line, and also what Python raises for the same mistake."""
    with pytest.raises(TypeError, match="line 1") as caught:
        nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d(3, kernal=3))])
    assert isinstance(caught.value, neurlink.NerveArgumentError)
    with pytest.raises(TypeError, match="unexpected keyword"):
        neurlink.resnet18(num_class=10)
    with pytest.raises(KeyError) as unknown:
        neurlink.create_model("resnet17")
    assert isinstance(unknown.value, neurlink.NeurlinkError) and "resnet18" in str(unknown.value)
    with pytest.raises(IndexError, match="line 1") as caught:
        nv.build([((3, 1), nv.Input()), ((3, 1), nv.Add[[0, 5]]())])
    assert isinstance(caught.value, neurlink.SelectorError)
    with pytest.raises(KeyError, match="line 1"):
        nv.build([((3, 1), nv.Input()), ((3, 1), nv.Add[[0, "nope"]]())])
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nv.Conv2d[-1, "c"](1))])
    with pytest.raises(IndexError):
        net[7]
    with pytest.raises(KeyError):
        net["nope"]
    with pytest.raises(neurlink.InputError):
        net[7]
    for wrong in (1.0, None, slice(0, 2)):
        with pytest.raises(TypeError, match="names no line") as caught:
            net[wrong]
        assert isinstance(caught.value, neurlink.InputError)
    with pytest.raises(TypeError):
        net(torch.zeros(1, 3, 4, 4), outputs="c")
    lines = [((3, 1), nv.Input()), ((3, 1), nv.Conv2d[-1, "c"](1))]
    for outputs, python in [
        ([99], IndexError),
        (["x"], KeyError),
        ("c", TypeError),
        (1, TypeError),
        ([1.5], TypeError),
    ]:
        with pytest.raises(python) as caught:
            nv.build(lines, outputs=outputs)
        assert isinstance(caught.value, neurlink.SelectorError)
    with pytest.raises(TypeError, match="line 1") as caught:
        nv.build([((3, 1), nv.Input()), ((3, 1), nv.Add[[0, 1.5]]())])
    assert isinstance(caught.value, neurlink.SelectorError)
    with pytest.raises(FileNotFoundError, match="no such directory") as missing:
        neurlink.from_pretrained("/no/such/directory/anywhere")
    assert isinstance(missing.value, neurlink.PretrainedError)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "10"])
def test_a_zoo_builder_names_a_num_classes_it_cannot_make(value) -> None:
    """timm's num_classes=0 (no classifier) is refused at the builder, not as channels on line 12."""
    with pytest.raises(
        neurlink.NerveArgumentError, match=rf"resnet18: num_classes={value!r} is not a positive int"
    ) as info:
        neurlink.create_model("resnet18", num_classes=value)
    assert "outputs=" in str(info.value) and "line 12" not in str(info.value)
    assert neurlink.resnet18(np.int64(3))[-1].conv.out_channels == 3
    assert neurlink.unet_resnet18(num_classes=np.int64(2))[-1].conv.out_channels == 2  # passed on as an int
    assert neurlink.resnet18(num_classes=torch.tensor(4))._made_by[1] == {"num_classes": 4}


@pytest.mark.parametrize(
    "builder, keyword",
    [("unet_resnet18", "classes"), ("unet_resnet34", "encoder_weights"), ("hrnet_w18_small", "foo")],
)
def test_every_family_names_an_unknown_keyword_at_its_builder(builder, keyword) -> None:
    """smp's classes= given to a U-Net, or a typo to an HRNet: named at the builder, not at line 3 or 5."""
    with pytest.raises(
        neurlink.UnexpectedArgumentError, match=rf"{builder}\(\) got unexpected keyword argument\(s\) '{keyword}'"
    ) as info:
        neurlink.create_model(builder, **{keyword: 2})
    assert "line " not in str(info.value) and "block_keywords" not in str(info.value)


def test_a_norm_module_of_other_channels_is_a_build_error() -> None:
    """resnet18(norm=nn.BatchNorm2d(64)): one module for every line built, then failed at the first call."""
    with pytest.raises(
        NerveArgumentError,
        match=r"norm=BatchNorm2d\(num_features=64\) is for 64 channels, but this line's norm has 128",
    ):
        neurlink.resnet18(norm=nn.BatchNorm2d(64))
    with pytest.raises(NerveArgumentError, match=r"GroupNorm\(num_channels=16\) is for 16 channels"):
        nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d(3, norm=nn.GroupNorm(4, 16)))])
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d(3, norm=nn.BatchNorm2d(8)))])  # a copy per line
    assert net[1].norm.num_features == 8


def test_a_line_overwritten_in_place_cannot_be_read_after():
    """``nn.ReLU(inplace=True)`` on line 1 changes line 1's tensor: a later line reading line 1 would get the
    ReLU's values (relu(c) + relu(c) where c + relu(c) was written)."""
    lines = [((3, 1), nv.Input()), ((8, 1), nv.Conv2d[-1, "c"](3)), ((8, 1), nn.ReLU(inplace=True))]
    with pytest.raises(
        neurlink.DefinitionError, match=r"(?s)^line 3: .*reads line 1, which line 2 \(\(8, 1\), ReLU\(inplace=True\)\)"
    ):
        nv.build([*lines, ((8, 1), nv.Add[["c", -1]]())])
    net = nv.build([*lines, ((8, 1), nv.Add[[-1, -1]]())])  # reading the overwritten line itself is fine
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(net(x), 2 * torch.relu(net[1](x)))


def test_a_derived_keyword_says_where_it_comes_from():
    with pytest.raises(neurlink.UnexpectedArgumentError, match=r"'stride' \(stride comes from the dims the lines"):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3, stride=2))])
