"""Geometry modes: unpadded ("valid"), PyTorch-padded (floor) and ceil-mode convs and pools, whose sizes
propagate line to line, held to PyTorch's own layers with the same weights at every base size 1..64."""

from __future__ import annotations

import copy
import pickle
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import fx, nn

import neurlink
import neurlink.nerves as nv
from neurlink.sizes import apply_steps, steps_text, window_step

BASES = range(1, 65)

# (nerve, its keywords, the torch module with the same geometry at the stride the ratios declare)
KINDS = {
    "conv3 valid s2": (nv.Conv1d, (3,), {"padding": "valid"}, lambda c: nn.Conv1d(c, c, 3, 2, 0), 2),
    "conv7 p2 s2": (nv.Conv1d, (7,), {"padding": 2}, lambda c: nn.Conv1d(c, c, 7, 2, 2), 2),
    "conv3 p1 s2 (same)": (nv.Conv1d, (3,), {"padding": 1}, lambda c: nn.Conv1d(c, c, 3, 2, 1), 2),
    "conv11 p2 s4": (nv.Conv1d, (11,), {"padding": 2}, lambda c: nn.Conv1d(c, c, 11, 4, 2), 4),
    "conv3 valid s1": (nv.Conv1d, (3,), {"padding": "valid"}, lambda c: nn.Conv1d(c, c, 3, 1, 0), 1),
    "conv4 valid s4 (patchify)": (nv.Conv1d, (4,), {"padding": "valid"}, lambda c: nn.Conv1d(c, c, 4, 4, 0), 4),
    "max2 valid s2": (nv.MaxPool1d, (2,), {"padding": "valid"}, lambda c: nn.MaxPool1d(2, 2), 2),
    "max3 valid s2": (nv.MaxPool1d, (3,), {"padding": "valid"}, lambda c: nn.MaxPool1d(3, 2), 2),
    "max3 ceil s2": (nv.MaxPool1d, (3,), {"padding": 0, "ceil_mode": True}, lambda c: nn.MaxPool1d(3, 2, ceil_mode=True), 2),
    "max3 p1 ceil s2": (
        nv.MaxPool1d, (3,), {"padding": 1, "ceil_mode": True}, lambda c: nn.MaxPool1d(3, 2, 1, ceil_mode=True), 2,
    ),
    "avg2 valid s2": (nv.AvgPool1d, (2,), {"padding": "valid"}, lambda c: nn.AvgPool1d(2, 2), 2),
    "avg3 p1 s2 counting pad": (
        nv.AvgPool1d, (3, True), {"padding": 1}, lambda c: nn.AvgPool1d(3, 2, 1, count_include_pad=True), 2,
    ),
    "same conv3 s2": (nv.Conv1d, (3,), {}, None, 2),  # the default: ceil(n / 2), padded by the line
    "same max3 s1": (nv.MaxPool1d, (3,), {}, lambda c: nn.MaxPool1d(3, 1, 1), 1),
}  # fmt: skip

CHAINS = [
    ["max2 valid s2", "max2 valid s2", "max2 valid s2"],  # VGG's pools: floor(b / 8)
    ["conv7 p2 s2", "max3 valid s2", "conv3 valid s1", "max3 ceil s2"],
    ["conv11 p2 s4", "max3 valid s2", "same conv3 s2", "max3 valid s2"],  # AlexNet-like, a "same" line inside
    ["conv3 valid s2", "conv3 valid s1", "max3 valid s2", "avg3 p1 s2 counting pad"],  # Inception-v3's stem
    ["max3 p1 ceil s2", "same max3 s1", "max3 ceil s2", "conv3 p1 s2 (same)"],  # GoogLeNet's ceil-mode pools
    ["conv4 valid s4 (patchify)", "avg2 valid s2", "same conv3 s2"],  # ConvNeXt / Swin patchify, DenseNet's pool
]


def _chain(names: list[str]) -> tuple[nv.Network, list[nn.Module | None]]:
    lines, references, ratio = [((2, 1), nv.Input())], [], 1
    for name in names:
        cls, args, keywords, torch_module, stride = KINDS[name]
        ratio *= stride
        lines.append(((2, ratio), cls(*args, **keywords)))
        references.append(torch_module(2) if torch_module is not None else None)
    return nv.build(lines).eval(), references


def _reference(net: nv.Network, references: list[nn.Module | None], x: torch.Tensor) -> list[torch.Tensor]:
    """The chain in plain torch: the same weights; a default ("same") line is run as neurlink runs it."""
    outputs = [x]
    for k, module in enumerate(references, start=1):
        line = net[k]
        if module is None:
            outputs.append(line(outputs[-1]))
            continue
        if isinstance(module, nn.Conv1d):
            module.load_state_dict(line.conv.state_dict())
        outputs.append(module(outputs[-1]))
    return outputs


@pytest.mark.parametrize("names", CHAINS, ids=[" > ".join(c) for c in CHAINS])
def test_a_chain_of_geometries_is_pytorchs_at_every_base_size(names: list[str]) -> None:
    _check_chain(names, least=10)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=4))
def test_any_chain_of_geometries_is_pytorchs_at_every_base_size(names: list[str]) -> None:
    _check_chain(names, least=0)  # (a chain of four stride-4 lines may answer at no base up to 64)


def _check_chain(names: list[str], least: int) -> None:
    net, references = _chain(names)
    shapes = net.lines
    generator = torch.Generator().manual_seed(0)
    answered = 0
    for base in BASES:
        x = torch.randn(1, 2, base, generator=generator)
        try:
            expected = _reference(net, references, x)
        except RuntimeError:  # PyTorch refuses an input smaller than a window: so does the line
            with pytest.raises(neurlink.NeurlinkError, match="line"):
                net(x)
            continue
        with torch.no_grad():
            got = net(x, output_intermediate=True)
        for k, (ours, theirs) in enumerate(zip(got, expected)):
            assert ours.shape == theirs.shape, (base, k)
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
            # the declared shape, sized from the lines before it, says the same size before any call
            assert shapes[k].dims[0].shape.size((base,)) == tuple(theirs.shape[2:]), (base, k)
        answered += 1
    assert answered >= least  # every chain answers from a small size on


@pytest.mark.parametrize(
    ("step", "formula"),
    [
        ((2, 1, 2, 0, 0, False), lambda n: (n - 2) // 2 + 1),
        ((3, 1, 2, 0, 0, False), lambda n: (n - 3) // 2 + 1),
        ((3, 1, 2, 0, 0, True), lambda n: min(-(-(n - 3) // 2) + 1, (n - 1) // 2 + 1)),
        ((7, 1, 2, 2, 2, False), lambda n: (n + 4 - 7) // 2 + 1),
        ((3, 2, 1, 0, 0, False), lambda n: n - 4),
        ((3, 1, 2, 1, 1, False), lambda n: -(-n // 2)),  # "same": folded into the ratio
    ],
)
def test_a_window_step_is_pytorchs_output_size_formula(step, formula) -> None:
    kernel, dilation, stride, left, right, ceil_mode = step
    normalised = window_step(kernel, dilation, stride, left, right, ceil_mode)
    for n in BASES:
        if formula(n) >= 1:
            assert apply_steps(n, (normalised,)) == formula(n), n


def test_floor_chains_compose_as_one_floor() -> None:
    """floor(floor(b / a) / c) = floor(b / ac): three unpadded 2x2 pools are floor(b / 8)."""
    net, _ = _chain(["max2 valid s2"] * 3)
    for base in range(8, 200):
        assert net.lines[3].dims[0].shape.size((base,)) == (base // 8,)
    assert steps_text(net.lines[3].dims[0].shape.sizing[0]).count("floor") == 3


def test_a_pool_written_naturally_pads_where_googlenets_does_not() -> None:
    """torchvision's GoogLeNet pools with MaxPool2d(3, 2, ceil_mode=True): no padding. The line written with
    the default geometry pads by 1, which at multiples of 32 gives the same shapes and different values."""
    x = torch.randn(1, 4, 32, 32)
    reference = nn.MaxPool2d(3, 2, ceil_mode=True)(x)
    same = nv.build([((4, 1), nv.Input()), ((4, 2), nv.MaxPool2d(3))])(x)
    assert same.shape == reference.shape and not torch.equal(same, reference)
    ceil = nv.build([((4, 1), nv.Input()), ((4, 2), nv.MaxPool2d(3, padding=0, ceil_mode=True))])
    for size in (32, 33, 57, 224, 225):
        x = torch.randn(1, 4, size, size + 3)
        torch.testing.assert_close(ceil(x), nn.MaxPool2d(3, 2, ceil_mode=True)(x), rtol=0, atol=0)


def test_lines_that_grow_land_on_the_line_they_undo() -> None:
    """A transposed conv and an interpolation after unpadded convs return to the sizes of the encoder's lines."""
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "enc"](3, padding="valid")),
            ((8, 4), nv.MaxPool2d(2, padding="valid")),
            ((8, 2), nv.ConvTransposed2d(2)),
            ((16, 2), nv.Concat[[-1, "enc"]]()),
            ((16, 1), nv.Interpolate()),
        ]
    )
    for size in (9, 16, 37, 64):
        ys = net(torch.randn(1, 3, size, size + 1), output_intermediate=True)
        assert ys[3].shape[2:] == ys[1].shape[2:] == ((size - 3) // 2 + 1, (size - 2) // 2 + 1)
        assert ys[5].shape[2:] == (size, size + 1)


@pytest.mark.parametrize("ratio", [1, 2])
def test_an_interpolation_written_with_one_ratio_lands_on_the_propagated_size(ratio: int) -> None:
    """``((8, 1), nv.Interpolate())`` after an unpadded conv: the declared size is the conv's, in every dim."""
    for mode in ("nearest", "bilinear"):
        net = nv.build(
            [
                ((3, 1), nv.Input()),
                ((8, ratio), nv.Conv2d(3, padding="valid")),
                ((8, 2 * ratio), nv.Conv2d(3)),
                ((8, ratio), nv.Interpolate(mode)),
            ]
        )
        ys = net(torch.randn(1, 3, 37, 50), output_intermediate=True)
        assert ys[3].shape == ys[1].shape


def test_a_transposed_conv_that_cannot_reach_the_line_it_undoes_says_so_at_the_first_call() -> None:
    """A valid U-Net's decoder: unpadded convs shrink the map more than the strides, so a stride-2 transposed
    conv cannot land on the encoder's size (torch would say "output padding must be smaller than ...")."""
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 1), nv.Conv2d_ReLU(3, padding="valid")),
            ((8, 2), nv.MaxPool2d(2, padding=0)),
            ((16, 2), nv.Conv2d_ReLU(3, padding="valid")),
            ((8, 1), nv.ConvTransposed2d(2)),
        ]
    )
    with pytest.raises(neurlink.InputError, match=r"(?s)^line 4: .*lands on size 35 \(the line it undoes\), but from"
                       r" size 15 a stride-2 transposed conv reaches at most 31"):  # fmt: skip
        net(torch.randn(1, 3, 37, 50))


@pytest.mark.parametrize(
    ("pool", "given"),
    [
        (nv.MaxPool2d(padding=0, ceil_mode=True), "padding=0, ceil_mode=True"),
        (nv.MaxPool2d(dilation=2), "dilation=2"),
        (nv.AvgPool2d(count_include_pad=True), "count_include_pad=True"),
        (nv.AvgPool2d(padding="valid"), "padding='valid'"),
    ],
)
def test_a_window_keyword_without_a_kernel_is_refused(pool, given: str) -> None:
    """Without a kernel a pool is adaptive; a window's keyword there is a kernel forgotten (GoogLeNet's pool
    written without its 3 would silently pool adaptively)."""
    with pytest.raises(neurlink.NerveArgumentError, match=rf"(?s)^line 1: .*has no window for {re.escape(given)}"):
        nv.build([((3, 1), nv.Input()), ((3, "(1, 1)"), pool)])


def test_a_growing_line_lands_on_the_line_on_its_own_path_not_a_side_branch() -> None:
    """A side branch at the ratio a transposed conv returns to, written after the line it undoes, sized
    "same": the transposed conv still lands on its own path's line (``A``, unpadded)."""
    for side in (False, True):
        lines = [((3, 1), nv.Input()), ((16, 2), nv.Conv2d[-1, "A"](3, padding="valid"))]
        if side:
            lines.append(((16, 2), nv.Conv2d[0, "B"](3)))
        lines += [((16, 4), nv.Conv2d["A"](3)), ((16, 2), nv.ConvTransposed2d(4)), ((16, 2), nv.Add[[-1, "A"]]())]
        ys = nv.build(lines)(torch.randn(1, 3, 65, 97), output_intermediate=True)
        assert ys[-1].shape[2:] == ys[1].shape[2:] == (32, 48)


def test_lines_of_different_sizes_at_one_ratio_are_refused_at_build() -> None:
    with pytest.raises(
        neurlink.DimsError, match=r"(?s)^line 3: .*sizes follow the geometry of different lines"
    ) as caught:
        nv.build(
            [
                ((3, 1), nv.Input()),
                ((3, 2), nv.MaxPool2d(3, padding="valid")),
                ((3, 2), nv.MaxPool2d[0](3)),
                ((3, 2), nv.Add[[1, 2]]()),
            ]
        )
    assert "floor((b - 3) / 2) + 1" in str(caught.value) and "ceil(b / 2)" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (nv.Conv2d(3, padding="full"), r"padding='full'\n    allowed: padding=\"same\""),
        (nv.Conv2d(3, padding=-1), r"padding=-1"),
        (nv.Conv2d(3, padding=(1, 1, 1)), r"padding=\(1, 1, 1\)"),
        (nv.MaxPool2d(3, ceil_mode=True), r'ceil_mode=True with padding="same"'),
        (nv.MaxPool2d(3, padding=2), r"more than half the kernel"),
        (nv.MaxPool2d(3, padding=0, ceil_mode=1), r"ceil_mode=1 is not a bool"),
        (nv.ConvTransposed2d(3, padding="valid"), r"lands on the size of the line it undoes"),
    ],
)
def test_geometry_mistakes_name_the_line(line, message: str) -> None:
    lines = [((3, 1), nv.Input()), ((3, 1), nv.Conv2d(3)), ((3, 2), line)]
    if "Transposed" in repr(line):
        lines[2] = ((3, 0.5), line)
    with pytest.raises(neurlink.DefinitionError, match=r"(?s)^line 2: .*" + message):
        nv.build(lines)


def test_an_explicit_padding_needs_ratios() -> None:
    with pytest.raises(neurlink.DimsError, match=r"(?s)^line 1: .*is a geometry between ratios"):
        nv.build([((3, 1), nv.Input()), ((8, "(4, 4)"), nv.Conv2d(3, padding="valid"))])


def _valid_net() -> nv.Network:
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU(3, padding="valid")),
            ((8, 4), nv.MaxPool2d(3, padding=0, ceil_mode=True)),
            ((8, 2), nv.ConvTransposed2d(3)),
            ((8, "(1, 1)"), nv.AvgPool2d()),
        ]
    ).eval()


def test_a_network_of_geometries_copies_pickles_and_traces() -> None:
    net = _valid_net()
    x = torch.randn(2, 3, 45, 38)
    expected = net(x)
    for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        torch.testing.assert_close(other(x), expected, rtol=0, atol=0)
        assert other.lines[3].dims[0].shape.size((45, 38)) == net.lines[1].dims[0].shape.size((45, 38)) == (22, 18)
    traced = fx.symbolic_trace(net)
    torch.testing.assert_close(traced(x), expected, rtol=0, atol=0)
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x), expected, rtol=0, atol=0)


def test_the_summary_shows_the_propagated_sizes() -> None:
    from neurlink.tools import summary

    text = str(summary(_valid_net(), (1, 3, 45, 38)))
    assert "22, 18" in text and "11, 9" in text


def test_an_export_for_any_size_starts_where_every_line_still_has_a_size() -> None:
    """Sizes of 2 at least on every line (torch specializes 1): three unpadded 3x3 stride-2 pools from 24."""
    net = nv.build(
        [((3, 1), nv.Input()), ((3, 2), nv.MaxPool2d(3, padding="valid")), ((3, 4), nv.MaxPool2d(3, padding="valid")),
         ((3, 8), nv.MaxPool2d(3, padding="valid"))]
    )  # fmt: skip
    shrinking = nv.build([((3, 1), nv.Input())] + [((3, 1), nv.MaxPool2d(7, padding="valid"))] * 5)
    (spec,) = shrinking.dynamic_shapes()
    assert [spec[k].min for k in (2, 3)] == [32, 32]  # five unpadded 7x7 windows: 32 -> 2 (torch specializes 1)
    exported = torch.export.export(net, (torch.randn(1, 3, 64, 48),), dynamic_shapes=net.dynamic_shapes())
    for size in ((24, 24), (40, 72), (64, 32)):  # from 24: 11, 5, 2
        x = torch.randn(1, 3, *size)
        torch.testing.assert_close(exported.module()(x), net(x), rtol=0, atol=0)
