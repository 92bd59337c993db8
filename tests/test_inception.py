"""GoogLeNet and Inception-v3 against torchvision's: counts, eval outputs at every kind of input size they take
(odd, non-square, their smallest), training outputs of the main and auxiliary classifiers with their gradients
and batch statistics, the weight mapping both ways, the published-weights defaults, and the mistakes refused."""

from __future__ import annotations

import contextlib
import functools
import os

import pytest
import torch
from networks import count
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.models import (
    AuxLogitsNetwork,
    GoogLeNetAux,
    Inception,
    InceptionA,
    InceptionAux,
    InceptionB,
    TransformInput,
)

torchvision = pytest.importorskip("torchvision")

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# torchvision.models.<name>(weights=None): with the auxiliary classifiers, torchvision's default
PARAMETERS = {"googlenet": 13_004_888, "inception_v3": 27_161_264}


def _pair(name: str, **keywords) -> tuple[nn.Module, nv.Network]:
    """torchvision's model (PyTorch's default init, well scaled; random BatchNorm) and ours with its weights."""
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None, init_weights=False, **keywords)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # every affine and statistic its own (a batch through Inception-v3 needs 299x299)
        for norm in (m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)):
            norm.weight.copy_(torch.rand(norm.weight.shape, generator=generator) + 0.5)
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator) * 0.2)
            norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=generator) * 0.2)
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)
            norm.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=generator)))
    net = load_torchvision(getattr(neurlink, name)(**keywords), reference.state_dict())
    return reference, net


@functools.cache
def _eval_pair(name: str) -> tuple[nn.Module, nv.Network]:
    reference, net = _pair(name)
    return reference.eval(), net.eval()


def _assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    scale = max(1.0, theirs.abs().max().item())
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * scale)


def test_counts_without_the_auxiliary_heads() -> None:
    with torch.device("meta"):
        for name in PARAMETERS:
            theirs = getattr(torchvision.models, name)(weights=None, aux_logits=False, init_weights=False)
            assert count(getattr(neurlink, name)(aux_logits=False)) == count(theirs)
    assert count(neurlink.googlenet(aux_logits=False, num_classes=10)) == 6_624_904 - 990 * 1025


# GoogLeNet takes 15x15 and up (its published min_size); Inception-v3 75x75 and up
EVAL_CASES = [
    *[("googlenet", size) for size in ((15, 15), (33, 33), (64, 64), (77, 65))],
    pytest.param("googlenet", (224, 224), marks=pytest.mark.slow),
    ("inception_v3", (75, 75)),
    ("inception_v3", (80, 97)),
    pytest.param("inception_v3", (299, 299), marks=pytest.mark.slow),
]


def _case_id(value) -> str:
    return f"{value[0]}x{value[1]}" if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("name, size", EVAL_CASES, ids=_case_id)
def test_eval_outputs_are_torchvisions(name: str, size: tuple[int, int]) -> None:
    reference, net = _eval_pair(name)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits = net(x)
        assert isinstance(logits, torch.Tensor)  # the logits alone, as torchvision's eval
        _assert_close(logits, reference(x))
        _assert_close(net(x), reference(x))  # the flat forward, after the first call's checks


def test_every_googlenet_block_is_torchvisions_at_an_odd_size() -> None:
    reference, net = _pair("googlenet")
    reference.eval(), net.eval()  # (hooks of its own: not the shared pair)
    tags = [
        f"inception{stage}{letter}" for stage, letters in ((3, "ab"), (4, "abcde"), (5, "ab")) for letter in letters
    ]
    seen: dict[str, torch.Tensor] = {}
    for tag in tags:
        getattr(reference, tag).register_forward_hook(lambda module, args, out, tag=tag: seen.__setitem__(tag, out))
    x = torch.randn(1, 3, 37, 50)
    with torch.no_grad():
        reference(x)
        for tag, ours in zip(tags, net(x, outputs=tags)):
            assert torch.equal(ours, seen[tag]), tag


def _grads(net: nv.Network) -> dict[str, torch.Tensor]:
    """Our parameters' gradients under torchvision's keys (the exported tensors are the parameters)."""
    by_storage = {p.data_ptr(): p for p in net.parameters()}
    exported = to_torchvision_state_dict(net)
    return {key: by_storage[t.data_ptr()].grad for key, t in exported.items() if t.data_ptr() in by_storage}


def _check_training(name: str, size: tuple[int, int], fields: tuple[str, ...], **keywords) -> None:
    """Training mode: the same outputs (main and auxiliary), gradients and updated batch statistics."""
    reference, net = _pair(name, **keywords)
    reference.train(), net.train()
    x = torch.randn(2, 3, *size)
    ours, theirs = net(x), reference(x)
    assert type(ours).__name__ == type(theirs).__name__ and ours._fields == theirs._fields == fields
    for a, b in zip(ours, theirs, strict=True):
        _assert_close(a, b)
    sum(t.square().mean() for t in ours).backward()
    sum(t.square().mean() for t in theirs).backward()
    grads, theirs_named = _grads(net), dict(reference.named_parameters())
    assert set(grads) == set(theirs_named)
    for key, grad in grads.items():
        expected = theirs_named[key].grad
        assert grad is not None and expected is not None, key
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4 * max(1.0, expected.abs().max().item()))
    exported, state = to_torchvision_state_dict(net), reference.state_dict()
    for key in (k for k in state if "running" in k):
        torch.testing.assert_close(exported[key], state[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(64, 64), (77, 65)])
def test_googlenet_training_outputs_and_gradients_are_torchvisions(size: tuple[int, int]) -> None:
    _check_training("googlenet", size, ("logits", "aux_logits2", "aux_logits1"), dropout=0.0, dropout_aux=0.0)


def test_inception_v3_training_outputs_and_gradients_are_torchvisions() -> None:
    # its auxiliary head's 5x5 pool (stride 3) and 5x5 conv need Mixed_6e at 17x17: about 299 and up
    _check_training("inception_v3", (299, 299), ("logits", "aux_logits"), dropout=0.0)


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_weights_go_back_to_torchvision_strictly_in_its_order(name: str) -> None:
    reference, net = _pair(name)
    exported = to_torchvision_state_dict(net)
    assert list(exported) == list(reference.state_dict())
    fresh = getattr(torchvision.models, name)(weights=None, init_weights=False)
    assert str(fresh.load_state_dict(exported)) == "<All keys matched successfully>"
    for key, tensor in reference.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], tensor), key


@pytest.mark.parametrize("name, size", [("googlenet", (40, 33)), ("inception_v3", (75, 80))])
def test_without_auxiliary_heads_and_with_transform_input(name: str, size: tuple[int, int]) -> None:
    keywords = {"aux_logits": False, "transform_input": True, "dropout": 0.0}
    reference, net = _pair(name, **keywords)
    assert isinstance(net[1], TransformInput)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        reference.eval(), net.eval()
        _assert_close(net(x), reference(x))
        reference.train(), net.train()  # no auxiliary heads: the logits alone in training too
        _assert_close(net(x), reference(x))
    assert list(to_torchvision_state_dict(net)) == list(reference.state_dict())


def test_transform_input_is_torchvisions_arithmetic() -> None:
    net = nv.build([((3, 1), nv.Input()), ((3, 1), TransformInput())])
    x = torch.randn(2, 3, 5, 7)
    reference = torchvision.models.googlenet(weights=None, init_weights=False, transform_input=True)
    assert torch.equal(net(x), reference._transform_input(x))


def test_outputs_by_tag_and_the_auxiliary_lines_in_eval() -> None:
    net = neurlink.googlenet(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = net(x, outputs=["inception3b", "inception4e", "inception5b"])
        assert [tuple(f.shape) for f in features] == [(1, 480, 8, 8), (1, 832, 4, 4), (1, 1024, 2, 2)]
        logits, aux1 = net(x, outputs=["logits", "aux1"])  # in eval the auxiliary lines compute nothing
        assert torch.equal(logits, net(x)) and torch.equal(aux1, torch.zeros(1, 10))
    v3 = neurlink.inception_v3(num_classes=10).eval()
    with torch.no_grad():  # at 75x75 the auxiliary head could not run: in eval it does not
        assert [
            tuple(f.shape) for f in v3(torch.randn(1, 3, 75, 75), outputs=["Mixed_5d", "Mixed_6e", "Mixed_7c"])
        ] == [
            (1, 288, 7, 7),
            (1, 768, 3, 3),
            (1, 2048, 1, 1),
        ]


@pytest.mark.parametrize("name, size", [("googlenet", 224), ("inception_v3", 299)])
def test_summary_macs_are_torchvisions_published_figure(name: str, size: int) -> None:
    """torchvision's published GFLOPS (its weights' ``_ops``) are of the eval network: no auxiliary heads."""
    with torch.device("meta"):
        net = getattr(neurlink, name)()
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    assert round(neurlink.summary(net, (1, 3, size, size)).total_macs / 1e9, 3) == published


def test_init_is_torchvisions() -> None:
    """torchvision's truncated normal: GoogLeNet's of std 0.01; Inception-v3's of 0.1, 0.001 for the auxiliary fc
    (the one module with a ``stddev`` torchvision's init reads). Each weight's spread is torchvision's."""
    for name in PARAMETERS:
        torch.manual_seed(0)
        reference = getattr(torchvision.models, name)(weights=None, init_weights=True).state_dict()
        ours = to_torchvision_state_dict(getattr(neurlink, name)())
        for key, tensor in reference.items():
            if key.endswith("weight") and tensor.dim() > 1 and tensor.numel() >= 4096:
                assert 0.9 < ours[key].std().item() / tensor.std().item() < 1.1, key
                assert ours[key].abs().max() <= 2
            elif "bn" in key or "running" in key:
                assert torch.equal(ours[key], tensor), key  # the norms at their defaults


# --- published weights, through torchvision's cache (a file of random weights in its place) -----------


@pytest.mark.parametrize(
    "name, keywords", [("googlenet", {}), ("googlenet", {"aux_logits": True}), ("inception_v3", {})]
)
def test_published_weights_take_torchvisions_defaults(tmp_path, monkeypatch, name: str, keywords: dict) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.get_model_weights(name).DEFAULT
    random, _ = _pair(name)  # the file holds the auxiliary heads, as the published one does
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(random.state_dict(), folder / os.path.basename(weights.url))
    untrained = pytest.warns(UserWarning, match="NOT pretrained") if keywords else contextlib.nullcontext()
    with untrained:  # torchvision warns that the published auxiliary heads are untrained
        reference = getattr(torchvision.models, name)(weights="DEFAULT", **keywords)
    net = getattr(neurlink, name)(weights="DEFAULT", **keywords)
    assert isinstance(net[1], TransformInput)  # torchvision's transform_input, on with its weights
    assert isinstance(net, AuxLogitsNetwork) == reference.aux_logits  # GoogLeNet's heads dropped by default
    assert net._made_by[1] == {"transform_input": True, "aux_logits": reference.aux_logits, **keywords}
    assert count(net) == count(reference)
    x = torch.randn(2, 3, 80, 80)
    with torch.no_grad():
        _assert_close(net.eval()(x), reference.eval()(x))


# --- what the blocks refuse -------------------------------------------------------------------


@pytest.mark.parametrize(
    "nerve, message",
    [
        (((250, 8), Inception[1](64, 96, 128, 16, 32, 32)), r"branches make 64 \+ 128 \+ 32 \+ 32 = 256 channels.*250"),
        (((256, 16), Inception[1](64, 96, 128, 16, 32, 32)), r"Inception keeps the shape 8 of its input line 1"),
        (((250, 8), InceptionA[1](32)), r"InceptionA's branches make 64 \+ 64 \+ 96 \+ 32 = 256 channels"),
        (((700, 16), InceptionB[1]()), r"InceptionB's branches make 384 \+ 96 \+ 192 = 672 channels"),
        (((10, "(1, 1)"), GoogLeNetAux[1]()), r"GoogLeNetAux makes logits \(N, classes\), but the line declares"),
        (((10, "()"), InceptionAux[2]()), r"InceptionAux pools its input at stride 3, so line 2 must be .*'\(4, 4\)'"),
        (((192, 8), TransformInput[1]()), r"TransformInput renormalises the 3 channels.*line 1 has 192"),
    ],
)
def test_mistakes_name_the_line(nerve, message: str) -> None:
    lines = [((3, 1), nv.Input()), ((192, 8), nv.Conv2d_BN_ReLU(3)), ((192, "(4, 4)"), nv.AvgPool2d()), nerve]
    with pytest.raises(DimsError, match=message) as error:
        nv.build(lines)
    assert "line 3" in str(error.value)


def test_builder_keywords() -> None:
    with pytest.raises(
        UnexpectedArgumentError, match=r"googlenet\(\) got unexpected keyword argument\(s\) 'init_weights'"
    ):
        neurlink.googlenet(init_weights=True)
    with pytest.raises(neurlink.NeurlinkError, match=r"dropout=1.5 is not a probability"):
        neurlink.inception_v3(dropout=1.5)
    net = neurlink.googlenet(num_classes=5, aux_logits=False, act=nn.SiLU)
    assert isinstance(net["inception3a"]["branch1"].act, nn.SiLU)
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
