"""neurlink.interop.load_by_structure: any reference's weights into networks users write, paired by structure."""

from collections import OrderedDict

import pytest
import torch
import torchvision
from networks import assert_same_outputs, randomize_batchnorm
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import StateDictError
from neurlink.interop import load_by_structure, load_torchvision, to_reference_state_dict
from neurlink.interop.structure import _reorder, structure_pairs
from neurlink.interop.torchvision import _pairs
from neurlink.models.resnet import BasicBlock


def hand_written_resnet18(num_classes: int) -> nv.Network:
    """ResNet-18 as a user writes it in the grammar, line by line (not the zoo's builder)."""
    stages = [((c, r), BasicBlock()) for c, r in ((64, 4), (128, 8), (256, 16), (512, 32)) for _ in range(2)]
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((64, 2), nv.Conv2d_BN_ReLU(7)),
            ((64, 4), nv.MaxPool2d(3)),
            *stages,
            ((512, "(1, 1)"), nv.AvgPool2d()),
            ((num_classes, "(1, 1)"), nv.Conv2d(1)),
        ]
    )


def small_vgg() -> tuple[nv.Network, nn.Module]:
    """A VGG-like network in the grammar, and the same network in plain torch (Linear head)."""
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 1), nv.Conv2d_BN_ReLU(3)),
            ((8, 2), nv.MaxPool2d(2, padding=0)),
            ((16, 2), nv.Conv2d_BN_ReLU(3)),
            ((16, "(1, 1)"), nv.AvgPool2d()),
            ((5, "(1, 1)"), nv.Conv2d(1)),
        ]
    )
    reference = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    return net, reference


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: tensor.clone() for key, tensor in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[key], before[key]) for key in before)


# --- networks users write ----------------------------------------------------------------------


def test_hand_written_resnet18_gives_torchvisions_outputs():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None, num_classes=10)
    randomize_batchnorm(reference, torch.Generator().manual_seed(1))
    net = load_by_structure(hand_written_resnet18(10), reference).eval()
    with torch.no_grad():
        for size in ((64, 64), (33, 33), (37, 50)):
            x = torch.randn(2, 3, *size)
            assert_same_outputs(net(x), reference(x))
    assert str(reference.load_state_dict(to_reference_state_dict(net, reference))) == "<All keys matched successfully>"
    assert list(to_reference_state_dict(net, reference)) == list(reference.state_dict())  # the reference's order


def test_small_vgg_from_plain_torch_both_ways():
    torch.manual_seed(0)
    net, reference = small_vgg()
    randomize_batchnorm(reference, torch.Generator().manual_seed(2))
    load_by_structure(net, reference.state_dict()).eval()
    with torch.no_grad():
        for size in ((32, 32), (17, 23)):
            x = torch.randn(2, 3, *size)
            assert_same_outputs(net(x), reference(x))
    exported = to_reference_state_dict(net, reference)
    assert exported["9.weight"].shape == (5, 16)  # the 1x1 conv's weight as the Linear's
    fresh = small_vgg()[1]
    fresh.load_state_dict(exported, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), reference.state_dict().values()))


def test_num_batches_tracked_missing_from_an_old_checkpoint_is_zero():
    net, reference = small_vgg()
    old = OrderedDict((k, v) for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked"))
    load_by_structure(net, old)
    assert net[1].norm.num_batches_tracked.item() == 0


# --- the zoo: by structure is what load_torchvision maps -----------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_zoo_by_structure_agrees_with_load_torchvision(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None, num_classes=10)
    randomize_batchnorm(reference, torch.Generator().manual_seed(3))
    by_structure = load_by_structure(getattr(neurlink, name)(num_classes=10), reference)
    by_name = load_torchvision(getattr(neurlink, name)(num_classes=10), reference)
    ours, theirs = by_structure.state_dict(), by_name.state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def test_regnet_needs_order_for_proj():
    torch.manual_seed(0)
    reference = torchvision.models.regnet_y_400mf(weights=None)
    net = neurlink.regnet_y_400mf()
    before = snapshot(net)
    # torchvision registers a block's proj before its f; the block's lines run it last
    with pytest.raises(
        StateDictError, match=r"(?s)line 2 \('stage1'\) > line 2 \('f.b'\).*conv.weight \[48, 8, 3, 3\]"
    ):
        load_by_structure(net, reference)
    assert_unchanged(net, before)
    load_by_structure(net, reference, order={"*.proj": "last"})
    by_name = load_torchvision(neurlink.regnet_y_400mf(), reference).state_dict()
    assert all(torch.equal(net.state_dict()[key], by_name[key]) for key in by_name)


# (zoo model, builder keywords, order=): the pairs by structure are load_torchvision's, tensor for tensor;
# checked on the meta device (shapes only), every family's reordering in one table
ORDERS = [
    ("resnet18", {}, None),
    ("mobilenet_v3_small", {}, None),
    ("efficientnet_b0", {}, None),
    ("shufflenet_v2_x0_5", {}, None),
    ("mnasnet0_5", {}, None),
    ("vgg11", {}, None),
    ("squeezenet1_0", {}, None),
    ("convnext_tiny", {}, {"*.layer_scale": "last"}),  # a CNBlock's own parameter comes before its children
    ("vit_b_16", {}, {"class_token": "after:conv_proj"}),  # the model's own parameter comes first
    ("swin_t", {}, {"*.attn.relative_position_*": "after:qkv"}),
    ("googlenet", {"aux_logits": True}, {"aux*": "last"}),  # torchvision's aux1, aux2 come before fc
    ("inception_v3", {"aux_logits": True}, {"AuxLogits": "last"}),
]


@pytest.mark.parametrize(("name", "keywords", "order"), ORDERS, ids=[case[0] for case in ORDERS])
def test_order_makes_the_zoo_pair_as_load_torchvision(name, keywords, order):
    if not hasattr(neurlink, name):
        pytest.skip(f"neurlink.{name} is not in this tree")
    init = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None, **keywords, **init)
        net = getattr(neurlink, name)(**keywords)
    assert set(structure_pairs(net, reference.state_dict(), order)) == set(_pairs(net))


# --- errors --------------------------------------------------------------------------------------


def with_state_dict(reference: nn.Module, change) -> OrderedDict:
    state_dict = OrderedDict(reference.state_dict())
    change(state_dict)
    return state_dict


def _wrong_shape(sd):
    sd["4.weight"] = torch.zeros(16, 8, 5, 5)


def _extra(sd):
    sd["extra.weight"] = torch.zeros(3)


def _missing(sd):
    del sd["9.bias"]


def _swapped(sd):  # the head's weight and bias swapped in order
    sd.move_to_end("9.weight")


ERRORS = [
    (
        _wrong_shape,
        r"(?s)^line 3: \(\(16, 2\), Conv2d_BN_ReLU\(3\)\)\n    conv.weight \[16, 8, 3, 3\] is paired with reference key"
        r" '4.weight' \[16, 8, 5, 5\].*allowed: .*order=",
    ),
    (_extra, r"reference key 'extra.weight' \[3\] is not used: the network has 12 tensors, the reference 13"),
    (_missing, r"(?s)^line 5: .*conv.bias \[5\] gets no reference tensor: the reference has 11 tensors"),
    (_swapped, r"(?s)line 5: .*conv.weight \[5, 16, 1, 1\] is paired with reference key '9.bias' \[5\]"),
]


@pytest.mark.parametrize(("change", "message"), ERRORS, ids=["shape", "unused", "unfilled", "order"])
def test_errors_name_the_line_and_change_nothing(change, message):
    net, reference = small_vgg()
    before = snapshot(net)
    with pytest.raises(StateDictError, match=message):
        load_by_structure(net, with_state_dict(reference, change))
    assert_unchanged(net, before)


def test_an_unused_num_batches_tracked_raises():
    net, reference = small_vgg()
    with pytest.raises(StateDictError, match=r"reference key 'extra.num_batches_tracked' is not used"):
        load_by_structure(net, with_state_dict(reference, lambda sd: sd.update({"extra.num_batches_tracked": 0})))


def test_a_linear_weight_fills_only_a_1x1_conv():
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d(3))])
    with pytest.raises(StateDictError, match=r"conv.weight \[8, 3, 3, 3\] is paired with reference key 'w' \[8, 27\]"):
        load_by_structure(net, {"w": torch.zeros(8, 27), "b": torch.zeros(8)})


ORDER_ERRORS = [
    ({"*.projection": "last"}, r"'\*.projection' matches no module of the reference"),
    ({"*.proj": "end"}, r"(?s)'end' is no place.*allowed: 'first', 'last'"),
    (
        {"*.proj": "after:g"},
        r"(?s)'trunk_output.block1.block1-0.proj' has no sibling 'g'.*one of the modules beside it: f$",
    ),
    (lambda keys: keys[1:], r"leaves out 'stem.0.weight'"),
    (["*.proj"], r"order=\['\*.proj'\] is a list"),
]


@pytest.mark.parametrize(("order", "message"), ORDER_ERRORS, ids=["no match", "place", "sibling", "callable", "type"])
def test_order_errors(order, message):
    with torch.device("meta"):
        net = neurlink.regnet_y_400mf()
    reference = {
        "stem.0.weight": torch.zeros(1),
        "trunk_output.block1.block1-0.proj.0.weight": torch.zeros(1),
        "trunk_output.block1.block1-0.f.a.0.weight": torch.zeros(1),
    }
    with pytest.raises(StateDictError, match=message):
        structure_pairs(net, reference, order)


def test_order_moves_modules_keeping_their_order():
    keys = ["a.t.x", "a.t.y", "a.q.w", "a.q.b", "a.p.w", "head.w"]
    assert _reorder(keys, {"a.t": "after:q"}) == ["a.q.w", "a.q.b", "a.t.x", "a.t.y", "a.p.w", "head.w"]
    assert _reorder(keys, {"a.[tq]": "last"}) == ["a.p.w", "a.t.x", "a.t.y", "a.q.w", "a.q.b", "head.w"]
    assert _reorder(keys, {"a.[pq]": "first"}) == ["a.q.w", "a.q.b", "a.p.w", "a.t.x", "a.t.y", "head.w"]
    assert _reorder(keys, {"head": "before:a"}) == ["head.w", *keys[:-1]]


def test_the_network_comes_first():
    _, reference = small_vgg()
    with pytest.raises(StateDictError, match=r"load_by_structure\(model, ...\): model is a Sequential"):
        load_by_structure(reference, small_vgg()[0])
    with pytest.raises(StateDictError, match=r"reference is a str.*torch.load"):
        load_by_structure(small_vgg()[0], "weights.pt")  # type: ignore[arg-type]


@pytest.mark.parametrize("as_state_dict", [False, True], ids=["model", "state_dict"])
def test_a_missing_bias_is_named_at_its_line_not_where_the_shapes_part(as_state_dict):
    """A reference conv with a bias where the line has none: same shapes go on pairing (a running mean
    with a bias) until a later line's shapes differ. The pair of a buffer with a parameter names line 1."""
    reference = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
    )
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d_BN_ReLU(3)), ((8, 1), nv.Conv2d_BN_ReLU(3, act=None))])
    with pytest.raises(StateDictError, match=r"(?s)^line 1: .*norm.running_mean \[8\] is paired with reference key"
                       r" '1.bias' \[8\].*a buffer is paired with a parameter"):  # fmt: skip
        load_by_structure(net, reference.state_dict() if as_state_dict else reference)


def test_the_way_back_keeps_the_module_versions_torchvisions_mnasnet_reads():
    reference = torchvision.models.mnasnet0_5(num_classes=10)
    net = load_by_structure(neurlink.mnasnet0_5(num_classes=10), reference)
    reference.load_state_dict(to_reference_state_dict(net, reference))  # its loader needs _metadata's version
