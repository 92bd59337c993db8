"""The grammar: lines, selectors, tags, multi-output nerves, Inputs, calling, user nerves."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink import NeurlinkError


def test_public_face():
    assert neurlink.nv is nv is neurlink.nerves
    assert neurlink.nn.Conv2d is torch.nn.Conv2d and neurlink.nn.I is torch.nn.Identity
    assert neurlink.nn.functional.relu is torch.nn.functional.relu
    assert callable(neurlink.nn.DropPath) and callable(neurlink.nn.functional.drop_path)
    assert neurlink.nn.Rearrange("b c h w -> b (c h w)")(torch.ones(2, 3, 4, 5)).shape == (2, 60)
    with pytest.raises(AttributeError):
        neurlink.nn.NoSuchLayer  # noqa: B018


def test_nested_lists_flatten_and_repeats_are_fresh_modules():
    conv = nv.Conv2d(3)
    net = nv.build([((3, 1), nv.Input()), [((3, 1), conv)] * 3, [[((3, 1), nn.Tanh())]]])
    assert len(net.lines) == 5
    weights = [net.get_submodule(f"{i}.conv").weight for i in (1, 2, 3)]
    assert len({id(w) for w in weights}) == 3
    assert not torch.equal(weights[0], weights[1])


def test_repeated_plain_module_is_copied_per_line():
    linear = nn.Conv2d(3, 3, 1)
    net = nv.build([((3, 1), nv.Input()), [((3, 1), linear)] * 2])
    first, second = net.get_submodule("1"), net.get_submodule("2")
    # every line gets its own copy, the first too: the definition's module is never the network's
    assert first is not linear and second is not linear and first.weight is not second.weight
    torch.testing.assert_close(first.weight, linear.weight)
    torch.testing.assert_close(second.weight, linear.weight)


def test_selectors():
    net = nv.build(
        [
            ((2, 1), nv.Input["x"]()),  # 0
            ((2, 1), nv.Identity()),  # 1: previous
            ((2, 1), nv.Identity[0, "a"]()),  # 2: absolute index, tagged
            ((2, 1), nv.Identity[-2]()),  # 3: counted back
            ((2, 1), nv.Identity["a"]()),  # 4: by tag
            ((8, 1), nv.Concat[1:5]()),  # 5: slice
            ((4, 1), nv.Concat["x":"a"]()),  # 6: slice with tag bounds (stop excluded): lines 0, 1
            ((14, 1), nv.Concat[[0, "a", slice(-3, -1)]]()),  # 7: list mixing forms: 0, 2, 4, 5
        ]
    )
    refs = [[r.line for r in entry.refs] for entry in net.lines]
    assert refs[1] == [0] and refs[2] == [0] and refs[3] == [1] and refs[4] == [2]
    assert refs[5] == [1, 2, 3, 4] and refs[6] == [0, 1] and refs[7] == [0, 2, 4, 5]
    assert net.lines[2].tag == "a"


def test_list_selector_with_slice_and_steps():
    net = nv.build(
        [
            ((1, 1), nv.Input()),
            [((1, 1), nv.Identity[0]())] * 4,
            ((3, 1), nv.Concat[[0, slice(1, 5, 2)]]()),
        ]
    )
    assert [r.line for r in net.lines[5].refs] == [0, 1, 3]
    x = torch.randn(1, 1, 4, 4)
    assert net(x, outputs=[5])[0].shape == (1, 3, 4, 4)


def test_none_selector_selects_nothing():
    class Constant(nv.Nerve):
        def __init__(self):
            super().__init__()
            assert self.input_links == []
            self.value = nn.Parameter(torch.ones(1, self.target_dims[0].channels, 1, 1))

        def forward(self):
            return self.value

    net = nv.build([((3, 1), nv.Input()), ((4, "(1, 1)"), Constant[None]())])
    assert net(torch.zeros(1, 3, 2, 2)).shape == (1, 4, 1, 1)


class Split(nv.Nerve):
    """A two-output nerve: the first and second half of the channels."""

    def __init__(self):
        super().__init__()
        self.expect_links(1, outputs=2)
        self.half = self.target_dims[0].channels

    def forward(self, x):
        return x[:, : self.half], x[:, self.half :]


def test_multi_output_lines_and_picking_one_output():
    seen = {}

    class Merge(nv.Nerve):
        def __init__(self):
            super().__init__()
            seen["dims"] = self.input_links[0].dims

        def forward(self, halves):
            return halves[0] * halves[1]

    net = nv.build(
        [
            ((4, 1), nv.Input()),
            ((2, 1), (2, 1), Split[-1, "halves"]()),
            ((2, 1), Merge()),  # the whole line: a tuple
            ((2, 1), nv.Add[[nv.output("halves", 1), -1]]()),
            ((2, 2), nv.Conv2d[nv.output(1, 0)](3)),
        ]
    )
    assert [d.channels for d in seen["dims"]] == [2, 2]
    x = torch.randn(1, 4, 6, 6)
    halves, product, added, conv = net(x, outputs=["halves", 2, 3, 4])
    assert isinstance(halves, tuple) and len(halves) == 2
    torch.testing.assert_close(product, x[:, :2] * x[:, 2:])
    torch.testing.assert_close(added, x[:, 2:] + product)
    assert conv.shape == (1, 2, 3, 3)


def test_several_inputs_and_the_base_shape():
    net = nv.build(
        [
            ((3, 1), nv.Input["image"]()),
            ((5, 4), nv.Input["features"]()),
            ((5, 4), nv.Conv2d["image"](3)),
            ((10, 4), nv.Concat[["features", -1]]()),
        ]
    )
    y = net([torch.randn(2, 3, 30, 17), torch.randn(2, 5, 8, 5)])
    assert y.shape == (2, 10, 8, 5)

    marked = nv.build(
        [
            ((5, 4), nv.Input()),
            ((3, 1), nv.Input(base_shape=True)),
            ((5, 4), nv.Conv2d[1](3)),
            ((10, 4), nv.Concat[[0, -1]]()),
        ]
    )
    assert marked([torch.randn(1, 5, 3, 3), torch.randn(1, 3, 9, 12)]).shape == (1, 10, 3, 3)


def test_calling_modes():
    net = nv.build([((3, 1), nv.Input()), ((4, 2), nv.Conv2d[-1, "a"](3)), ((4, 4), nv.MaxPool2d[-1, "b"](2))])
    x = torch.randn(1, 3, 9, 9)
    assert net(x).shape == (1, 4, 3, 3)
    assert net([x]).shape == (1, 4, 3, 3)
    everything = net(x, output_intermediate=True)
    assert [tuple(y.shape) for y in everything] == [(1, 3, 9, 9), (1, 4, 5, 5), (1, 4, 3, 3)]
    b, a = net(x, outputs=["b", "a"])
    torch.testing.assert_close(b, everything[2])
    torch.testing.assert_close(a, everything[1])
    assert net(x, outputs=[-1])[0].shape == (1, 4, 3, 3)


def test_user_nerve_reads_its_context_and_base_shape():
    seen = {}

    class Probe(nv.Nerve):
        def __init__(self, scale=1):
            super().__init__()
            seen["links"] = self.input_links
            seen["target"] = self.target_dims

        def forward(self, x, *, base_shape):
            seen["base"] = tuple(base_shape)
            seen["outputs"] = self.output_shapes(base_shape)
            return torch.nn.functional.interpolate(x, size=self.output_shapes(base_shape)[0])

    net = nv.build([((3, 1), nv.Input()), ((3, 2), nv.Conv2d[-1, "c"](3)), ((3, 8), Probe(scale=2))])
    link = seen["links"][0]
    assert (link.index, link.tag, link.channels, link.shape) == (1, "c", 3, nv.ShapeSpec(2))
    assert seen["target"] == [(3, 8)]
    assert net(torch.randn(1, 3, 30, 17)).shape == (1, 3, 4, 3)
    assert seen["base"] == (30, 17) and seen["outputs"] == [(4, 3)]


class Block(nv.Nerve):
    """A residual block reusing its dims objects in sub-lines."""

    def __init__(self, expansion=2):
        super().__init__()
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = dims_out.channels // expansion
        self.add(((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1)))
        self.add(
            [
                ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(3)),
                (dims_out, nv.Conv2d_BN_ReLU(1, act=None)),
                (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
                (dims_out, nn.ReLU()),
            ]
        )


def test_user_block_with_sub_lines():
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((16, 4), Block()), ((16, 4), Block())])
    assert net(torch.randn(2, 3, 33, 33)).shape == (2, 16, 9, 9)
    assert "2.1.conv.weight" in net.state_dict() and "2.4.project.conv.weight" in net.state_dict()
    assert "3.4.project.conv.weight" not in net.state_dict()  # same dims: no projection
    text = repr(net)
    assert "(2): ((16, 4), Block())" in text and "(4): ((16, 4), SkipConnect2d[[0, -1]](1, norm=BatchNorm2d))" in text


def make_rich_net():
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
            ((16, 4), Block()),
            ((16, 2), nv.ConvTransposed2d(4)),
            ((8, 2), nv.Conv2d(1)),
            ((16, 2), nv.Concat[["stem", -1]]()),
            ((16, 1), nv.Interpolate("nearest")),
            ((16, "(1, 1)"), nv.AvgPool2d()),
        ]
    )


@pytest.mark.parametrize("roundtrip", ["pickle", "deepcopy", "torch.save", "state_dict"])
def test_roundtrips_give_identical_outputs(roundtrip):
    net = make_rich_net().eval()
    x = torch.randn(2, 3, 23, 18)
    if roundtrip == "pickle":
        other = pickle.loads(pickle.dumps(net))
    elif roundtrip == "deepcopy":
        other = copy.deepcopy(net)
    elif roundtrip == "torch.save":
        buffer = io.BytesIO()
        torch.save(net, buffer)
        buffer.seek(0)
        other = torch.load(buffer, weights_only=False)
    else:
        other = make_rich_net().eval()
        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        buffer.seek(0)
        other.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(other(x), net(x), rtol=0, atol=0)
    if roundtrip != "state_dict":  # the copy owns its parameters
        with torch.no_grad():
            other.get_submodule("4.conv").weight.zero_()
        assert not torch.equal(other(x), net(x))


def test_flat_forward_inlines_nerves_and_equals_the_nested_one():
    net = make_rich_net()
    for _ in range(2):  # the first call of a size checks every line; the second writes the flat forward
        net(torch.randn(1, 3, 19, 22))
    code = net._flat.graph_module.code
    assert "self.m_2_1_conv(" in code and "residual_add(" in code  # block internals called directly
    for mode in ("train", "eval"):
        getattr(net, mode)()
        x = torch.randn(2, 3, 19, 22)
        torch.manual_seed(0)
        flat = net(x)
        torch.manual_seed(0)
        nested = net(x, outputs=[-1])[0]
        torch.testing.assert_close(flat, nested, rtol=0, atol=0)


def test_state_dict_keys_are_short():
    keys = list(make_rich_net().state_dict())
    assert keys[:2] == ["1.conv.weight", "1.norm.weight"]
    assert max(len(k.split(".")) for k in keys) <= 5  # 2.4.project.conv.weight


def test_print_shows_lines_as_written():
    text = repr(make_rich_net())
    assert text.splitlines()[0] == "Network("
    assert "(1): ((8, 2), Conv2d_BN_ReLU[-1, 'stem'](3))" in text
    assert "(5): ((16, 2), Concat[['stem', -1]]())" in text
    assert "(7): ((16, '(1, 1)'), AvgPool2d())" in text


def test_gradients_reach_every_parameter():
    net = make_rich_net()
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_meta_device_build_allocates_nothing():
    net = nv.build([((3, 1), nv.Input()), [((512, 1), nv.Conv2d(3))] * 3], device="meta")
    assert all(p.device.type == "meta" for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == (3 * 512 * 9 + 512) + 2 * (512 * 512 * 9 + 512)
    with torch.device("meta"):
        assert next(nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(3))]).parameters()).is_meta


def test_nerve_classes_outside_a_build_only_record():
    definition = nv.Conv2d[-1, "c"](3, groups=1)
    assert repr(definition) == "Conv2d[-1, 'c'](3, groups=1)"
    assert repr(nv.Input["x"]()) == "Input['x']()"
    with pytest.raises(NeurlinkError):
        type.__call__(nv.Conv2d, 3)  # constructed outside a build: no context to read


def test_concurrent_builds_do_not_share_context():
    from concurrent.futures import ThreadPoolExecutor

    def build_one(channels):
        net = nv.build([((3, 1), nv.Input()), ((channels, 2), Block(expansion=1))])
        return net(torch.zeros(1, 3, 8, 8)).shape[1]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(build_one, [4, 8, 12, 16] * 4)) == [4, 8, 12, 16] * 4


def test_plain_module_takes_previous_output():
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nn.Sigmoid()), ((6, 1), nv.Concat[[0, 1]]())])
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(net(x), torch.cat([x, torch.sigmoid(x)], 1))


def test_skip_connect_checks_its_rank():
    with pytest.raises(neurlink.DimsError, match=r"(?s)line 2: .*SkipConnect1d is 1d, but its input line 0 is 2d"):
        nv.build([((3, (1, 1)), nv.Input()), ((3, (1, 1)), nv.Conv2d(3)), ((3, (1, 1)), nv.SkipConnect1d[[0, 1]]())])


def test_hooks_on_lines_and_blocks_fire():
    net = make_rich_net().eval()
    seen = []
    handle = net.get_submodule("2").register_forward_hook(lambda module, args, out: seen.append(out.shape))
    pre = net.get_submodule("2.1").register_forward_pre_hook(lambda module, args: seen.append("pre"))
    x = torch.randn(1, 3, 16, 16)
    expected = net(x, outputs=[-1])[0]
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    assert seen[-2:] == ["pre", (1, 16, 4, 4)]
    handle.remove(), pre.remove()
    seen.clear()
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    assert seen == []


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2)
    dropped = neurlink.nn.DropPath(0.25).train()(x)
    per_sample = dropped.flatten(1)
    torch.testing.assert_close(per_sample.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped or kept whole
    assert abs(dropped.mean().item() - 1.0) < 0.05
    assert torch.equal(neurlink.nn.DropPath(0.25).eval()(x), x)
    assert torch.equal(
        neurlink.nn.functional.drop_path(x, 0.5, training=True, scale_by_keep=False).unique(), torch.tensor([0.0, 1.0])
    )
    assert not neurlink.nn.DropPath(1.0).train()(x).any()  # every sample dropped, as torchvision's p=1
    for wrong in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
            neurlink.nn.DropPath(wrong)


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            [((3, 1), nv.Input()), ((3, 2), nv.Conv2d(3)), ((3, (2, 2, 2)), nv.Interpolate())],
            r"line 2: .*\n    the line declares a shape with 3 spatial dims, but its input line 1 is 2d",
        ),
        (
            [((3, 1), nv.Input()), ((3, 2), nv.Conv2d(3)), ((3, (2, 2, 2)), nv.Identity())],
            r"line 2: .*\n    the line declares a shape with 3 spatial dims, but its input line 1 is 2d",
        ),
        (
            [((3, (1, 1)), nv.Input()), ((3, (1, 1, 1)), nv.Input()), ((6, 1), nv.Concat[[0, 1]]())],
            r"line 2: .*\n    the selected lines have different numbers of spatial dims: line 0 is 2d, line 1 is 3d",
        ),
        (
            [((3, (1, 1)), nv.Input()), ((3, 1), nv.Identity()), ((3, (1, 1, 1)), nv.Add[[0, 1]]())],
            r"line 2: .*\n    the line declares a shape with 3 spatial dims, but its input line 0 is 2d",
        ),
    ],
)
def test_rank_keeping_nerves_reject_a_shape_of_another_rank(lines, message):
    with pytest.raises(neurlink.DimsError, match=message):
        nv.build(lines)
