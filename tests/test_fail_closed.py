"""The live forward fails closed, and definitions share no state (the structure issue's defects).

Each test makes a change that bypasses neurlink's instrumented paths (torch's base-class methods,
``__dict__`` writes, class attributes) and asserts that ``net(x)`` computes what the live tree says,
bitwise against :func:`networks.line_by_line`, a plain interpreter of the current modules.
"""

import copy
import json
import pickle
import threading

import pytest
import torch
from networks import line_by_line
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink import tree_watch
from neurlink.nerves.conv import Conv2d_BN_ReLU


def small():
    torch.manual_seed(0)
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU(3)),
            ((8, 2), nv.Conv2d_BN_ReLU(3)),
            ((8, 2), nv.Add[[-1, -2]]()),
            ((4, 2), nv.Conv2d_BN_ReLU(1)),
        ]
    ).double()
    return net.eval()


def x64(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def test_two_builds_of_one_definition_share_no_plain_module():
    lines = [((3, 1), nv.Input()), ((3, 1), nn.BatchNorm2d(3)), ((3, 1), nn.ReLU())]
    student, teacher = nv.build(lines), nv.build(lines)
    assert student[1] is not teacher[1] and student[1] is not lines[1][1]
    before = teacher[1].running_mean.clone()
    student.train()(torch.randn(4, 3, 8, 8) + 5)
    assert torch.equal(teacher[1].running_mean, before)  # training the student leaves the teacher alone
    assert not torch.equal(student[1].running_mean, before)


def test_a_hook_registered_through_the_base_class_fires():
    net = small()
    x = x64(1, 3, 16, 16)
    net(x), net(x)  # the flat forward is written and trusted
    calls = []
    nn.Module.register_forward_hook(net[1], lambda module, args, out: calls.append(out.shape))
    net(x)
    assert calls == [torch.Size([1, 8, 8, 8])]
    pre = []
    nn.Module.register_forward_pre_hook(net[2], lambda module, args: pre.append(1))
    net(x)
    assert pre == [1] and len(calls) == 2


def test_a_hook_written_into_the_hook_dict_fires():
    net = small()
    x = x64(1, 3, 16, 16)
    net(x), net(x)
    calls = []
    net[1]._forward_hooks[12345] = lambda module, args, out: calls.append(1)
    net(x)
    assert calls == [1]


def test_a_forward_set_through_the_base_class_runs():
    net = small()
    x = x64(1, 3, 16, 16)
    net(x), net(x)
    nerve = net[4]
    nn.Module.__setattr__(nerve, "forward", lambda y: torch.zeros(y.shape[0], 4, *y.shape[2:], dtype=y.dtype))
    assert torch.equal(net(x), torch.zeros(1, 4, 8, 8, dtype=torch.float64))


def test_a_child_or_attribute_written_behind_the_nerves_back_is_read():
    net = small()
    x = x64(1, 3, 16, 16)
    net(x), net(x)
    dict.__setitem__(net[1]._modules, "act", nn.Tanh())  # past the ChildModules dict's own methods
    torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
    net[2].__dict__["norm_after_act"] = True  # the order of norm and act that _steps reads
    out = net(x)
    torch.testing.assert_close(out, line_by_line(net, x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("line", "name", "value"),
    [
        (nv.ChannelShuffle(2), "groups", 4),
        (nv.AvgPool2d(3), "count_include_pad", True),
        (nv.PixelUnshuffle(), "factor", 1),
        (nv.Conv2d(4), "padding_mode", "reflect"),
    ],
)
def test_an_argument_of_a_built_line_is_refused_not_saved_and_ignored(line, name, value, tmp_path):
    """The forward computes what the build derived from a nerve's arguments: setting one afterwards was saved by
    save_pretrained and never computed (ChannelShuffle.groups = 4 shuffled in 2 groups)."""
    dims = (16, 2) if name == "factor" else (4, 1)
    net = nv.build([((4, 1), nv.Input()), (dims, line)])
    with pytest.raises(
        neurlink.NerveArgumentError, match=rf"\.{name} is (an argument of|derived from) its line, fixed when"
    ):
        setattr(net[1], name, value)
    net.save_pretrained(tmp_path)
    assert "attributes" not in json.loads((tmp_path / "config.json").read_text())


def test_a_class_level_change_of_a_nerves_computation_runs():
    net = small()
    x = x64(1, 3, 16, 16)
    expected = net(x)
    net(x)
    original = Conv2d_BN_ReLU._steps

    def doubled(self, ops, x, **keywords):
        return ops.function(torch.mul, original(self, ops, x, **keywords), 2)

    try:
        type.__setattr__(Conv2d_BN_ReLU, "_steps", doubled)  # bypasses the nerve metaclass
        torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
        assert not torch.equal(net(x), expected)
        Conv2d_BN_ReLU._steps = doubled  # through the metaclass too
        torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
    finally:
        type.__setattr__(Conv2d_BN_ReLU, "_steps", original)
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)


def test_a_child_write_bumps_the_epoch_after_the_write():
    """A forward that runs between the bump and the write must not mark the new epoch as checked:
    ChildModules writes first, then bumps (seen here by a reader of the epoch inside the write)."""
    net = small()
    block = net[1]
    seen = []

    class Watching(nn.Tanh):
        pass

    epoch_before = tree_watch.epoch()
    original_bump = tree_watch.bump

    def bump():
        seen.append(type(block._modules["act"]).__name__)
        original_bump()

    tree_watch.bump = bump
    try:
        block._modules["act"] = Watching()
    finally:
        tree_watch.bump = original_bump
    assert seen == ["Watching"] and tree_watch.epoch() > epoch_before


def test_summary_calls_the_module_a_line_holds_now():
    torch.manual_seed(0)
    net = nv.build(
        [((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 1), nv.ConvTransposed2d(3)), ((2, 1), nv.Conv2d(1))]
    )
    x = torch.randn(1, 3, 16, 16)
    net._modules["2"] = nn.Upsample(scale_factor=2)
    assert net(x).shape == (1, 2, 16, 16)
    text = neurlink.summary(net, (1, 3, 16, 16))
    assert "(1, 8, 16, 16)" in str(text)  # what the live Upsample made


def test_new_input_sizes_run_the_flat_forward_after_one_check():
    torch.manual_seed(0)
    net = nv.build([((4, 1), nv.Input()), ((8, 2), nv.Conv1d_BN_ReLU(3)), ((8, 4), nv.Conv1d_BN_ReLU(3))]).eval()
    net(torch.randn(1, 4, 50)), net(torch.randn(1, 4, 50))  # checked, then the flat forward is written
    flat = net.__dict__["_flat"]
    calls = []
    original = flat.graph_module.forward
    flat.graph_module.forward = lambda *a: calls.append(1) or original(*a)
    try:
        for length in range(51, 131):
            y = net(torch.randn(1, 4, length))
            assert y.shape == (1, 8, -(-length // 4))
    finally:
        flat.graph_module.forward = original
    assert len(calls) == 80  # every new length ran the flat forward
    verified = net.__dict__["_verified"]
    assert len(verified) <= 8  # nothing grows with the number of sizes seen


def test_a_network_with_its_own_modules_checks_a_bounded_number_of_sizes():
    class Shrink(nv.Nerve):
        def forward(self, x):
            return x

    net = nv.build([((4, 1), nv.Input()), ((4, 1), Shrink()), ((4, 2), nv.Conv1d(3))]).eval()
    for length in range(20, 320):
        net(torch.randn(1, 4, length))
    assert len(net.__dict__["_verified"]) <= 64


def test_attributes_changed_after_the_build_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    net = neurlink.resnet18(num_classes=10).eval()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 0.1  # as porting TensorFlow weights does
            module.running_var.uniform_(0.5, 2.0)
    net.save_pretrained(tmp_path)
    again = neurlink.from_pretrained(tmp_path)
    assert all(m.eps == 0.1 for m in again.modules() if isinstance(m, nn.BatchNorm2d))
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)


def test_a_changed_stride_in_a_line_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nn.MaxPool2d(3, 1, 1)), ((4, 1), nv.Conv2d(1))]).eval()
    net[1].dilation = 1
    net[1].ceil_mode = True  # a parameter-free change: shapes and classes stay
    net.save_pretrained(tmp_path)
    assert neurlink.from_pretrained(tmp_path)[1].ceil_mode is True


def test_an_attribute_changed_to_something_not_plain_is_refused_naming_the_line(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nn.ReLU()), ((4, 1), nv.Conv2d[-1, "head"](1))])
    net[2].conv.padding_mode = object()
    with pytest.raises(neurlink.errors.PretrainedError, match=r"(?s)line 2 \('head'\).*'padding_mode'"):
        net.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_a_tensor_or_new_attribute_set_after_the_build_is_refused_naming_the_line(tmp_path):
    """The weights do not hold a tensor kept as a plain attribute: saving it silently would load another function."""
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d_BN_ReLU[-1, "stem"](3))])
    net[1].norm.eps = torch.tensor(0.5)
    with pytest.raises(
        neurlink.errors.PretrainedError, match=r"(?s)line 1 \('stem'\).*'eps' is tensor.*register_buffer"
    ):
        net.save_pretrained(tmp_path)
    net[1].norm.eps = 1e-5
    net[1].my_flag = 3
    with pytest.raises(
        neurlink.errors.PretrainedError, match="'my_flag' .* added after the build: the definition makes none"
    ):
        net.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_a_plain_module_that_cannot_be_copied_is_a_definition_error_naming_the_line():
    class Locked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()

        def forward(self, x):
            return x

    with pytest.raises(neurlink.DefinitionError, match=r"(?s)line 1: \(\(3, 1\), Locked\(\)\).*cannot be copied"):
        nv.build([((3, 1), nv.Input()), ((3, 1), Locked())])


def test_a_numpy_scalar_set_after_the_build_is_saved_as_the_number_it_holds(tmp_path):
    import numpy as np

    net = nv.build([((3, 1), nv.Input()), ((3, 1), nn.BatchNorm2d(3)), ((4, 1), nv.Conv2d(1))]).eval()
    net[1].eps = np.float32(0.25)  # weights ported from a NumPy pipeline
    net.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["attributes"] == {"1": {"eps": 0.25}}
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(neurlink.from_pretrained(tmp_path)(x), net(x), rtol=0, atol=0)


def test_a_config_sets_only_existing_plain_attributes(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nn.BatchNorm2d(3)), ((4, 1), nv.Conv2d(1))])
    net[1].eps = 0.5
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["attributes"] == {"1": {"eps": 0.5}}
    for attributes, message in [
        ({"1": {"forward": 1}}, "not a plain attribute"),
        ({"1": {"_version": 3}}, "not a plain attribute"),
        ({"1": {"eps": {"object": "torch:onnx.ONNXProgram"}}}, "not a plain value"),
        ({"9": {"eps": 0.1}}, "no module of this path"),
        ({"1": {"eps": "big"}}, r"'big' is not of the kind the module holds there \(1e-05\)"),
        ({"1": {"eps": {"tuple": [1, 2]}}}, "is not of the kind the module holds there"),
        ({"1": {"num_features": 3.0}}, r"3.0 is not of the kind the module holds there \(3\)"),
        ({"2.conv": {"stride": {"tuple": [4, 4, 4]}}}, r"\(4, 4, 4\) is not of the kind the module holds there"),
    ]:
        config["attributes"] = attributes
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(neurlink.errors.PretrainedError, match=message):
            neurlink.from_pretrained(tmp_path)


def test_a_hooked_block_is_one_call_and_its_lines_run_flat():
    """FSDP2 places a pre-hook on every block: the block is called (its hooks fire, a forward hook may
    replace its output) and its own lines run from a flat forward of their own."""
    torch.manual_seed(0)
    net = neurlink.resnet18().double().eval()
    x = x64(1, 3, 32, 32)
    expected = net(x)
    net(x)
    blocks = [module for module in net.modules() if type(module).__name__ == "BasicBlock"]
    seen = []
    for block in blocks:
        block.register_forward_pre_hook(lambda module, args: seen.append(module))
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    assert seen == blocks
    assert all("_flat" in block.__dict__ for block in blocks)
    handle = blocks[-1].register_forward_hook(lambda module, args, out: out * 0)
    out = net(x)
    torch.testing.assert_close(out, line_by_line(net, x), rtol=0, atol=0)
    assert not torch.equal(out, expected)
    handle.remove()
    # the block's own flat forward follows a change inside it
    before = net(x)
    dict.__setitem__(blocks[0]._modules["1"]._modules, "act", nn.Tanh())
    after = net(x)
    torch.testing.assert_close(after, line_by_line(net, x), rtol=0, atol=0)
    assert not torch.equal(after, before)


def small_resnet() -> nv.Network:
    return neurlink.resnet18(num_classes=10).eval()


def test_a_network_whose_nerve_was_hooked_copies_and_pickles():
    """A hooked nerve keeps a flat forward of its own: copies and pickles leave it out, as the network's."""
    net = small_resnet()
    x = torch.randn(1, 3, 32, 32)
    handle = net[3].register_forward_hook(lambda module, args, out: None)
    net(x)
    net(x)
    handle.remove()
    copied = copy.deepcopy(net)
    loaded = pickle.loads(pickle.dumps(net))
    with torch.no_grad():
        assert torch.equal(copied(x), net(x)) and torch.equal(loaded(x), net(x))


def test_a_call_patched_on_nerve_or_on_nn_module_runs():
    """Nerve.forward, a nerve class's __call__, an instance's _call_impl, nn.Module.__call__: each patched
    one changes how a nerve is called, so the nerve is called (not inlined) and the patch runs."""
    net = small_resnet()
    x = torch.randn(1, 3, 32, 32)
    net(x)
    net(x)
    block = type(net[3])
    original = nv.Nerve.forward
    patches = [
        (nv.Nerve, "forward", lambda self, *args, **keywords: original(self, *args, **keywords) * 2),
        (block, "__call__", lambda self, *args, **keywords: nn.Module.__call__(self, *args, **keywords) * 0),
        (nn.Module, "__call__", lambda self, *args, **keywords: nn.Module._wrapped_call_impl(self, *args, **keywords)),
    ]
    with torch.no_grad():
        for owner, name, patch in patches:
            saved = owner.__dict__.get(name)
            setattr(owner, name, patch)
            try:
                assert torch.equal(net(x), line_by_line(net, x)), (owner, name)
            finally:
                setattr(owner, name, saved) if saved is not None else delattr(owner, name)
        net[3]._call_impl = lambda *args, **keywords: torch.zeros(1, 64, 8, 8)
        assert torch.equal(net(x), line_by_line(net, x))
        del net[3]._call_impl
        assert torch.equal(net(x), line_by_line(net, x))


def test_a_child_deleted_from_a_nerve_is_an_attribute_error_naming_the_line():
    net = small_resnet()
    x = torch.randn(1, 3, 32, 32)
    net(x)
    net(x)
    del net.get_submodule("3.1").act
    with pytest.raises(AttributeError, match="no child module 'act'") as caught:
        net(x)
    assert "raised in neurlink line 3 > line 1" in "\n".join(caught.value.__notes__)


def test_a_nerve_unhooked_is_inlined_again():
    net = small_resnet()
    x = torch.randn(1, 3, 32, 32)
    handle = net.get_submodule("3").register_forward_hook(lambda module, args, out: None)
    net(x)
    net(x)
    assert "m_3(" in net._flat.graph_module.code
    handle.remove()
    net(x)
    assert "m_3(" not in net._flat.graph_module.code and "m_3_1_conv(" in net._flat.graph_module.code
