"""``net(x)`` computes what the live module tree says, after every change PyTorch users make to it.

Each test changes a built network the way a user or a library does (swap a head, convert norms,
wrap blocks, inject adapters, fuse, prune, hook, patch a forward) and compares ``net(x)`` and its
gradients with :func:`networks.line_by_line`, a plain interpreter that calls the current module
of every line, bitwise in float64.
"""

import copy
import gc
import types
import warnings

import pytest
import torch
from networks import line_by_line
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing
from torch.nn.utils import parametrizations, prune

import neurlink
import neurlink.nerves as nv
from neurlink.models.resnet import BasicBlock


def resnet18(num_classes=1000):
    torch.manual_seed(0)
    return neurlink.resnet18(num_classes=num_classes).double()


def same_as_line_by_line(net, inputs, *, train=True):
    """``net(inputs)`` and the interpreter agree bitwise, outputs and gradients of every parameter."""
    net.train(train)
    results = []
    for run in (net, lambda x: line_by_line(net, x)):
        net.zero_grad()
        torch.manual_seed(1)
        out = run(inputs)
        out.square().sum().backward()
        grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
        results.append((out.detach(), grads))
    (out, grads), (ref_out, ref_grads) = results
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    for grad, ref in zip(grads, ref_grads):
        if ref is None:
            assert grad is None
        else:
            torch.testing.assert_close(grad, ref, rtol=0, atol=0)
    return out


def x64(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def test_a_swapped_head_runs_and_gets_gradients():
    net = resnet18()
    x = x64(2, 3, 32, 32)
    assert net(x).shape == (2, 1000, 1, 1)
    head = nn.Conv2d(512, 10, 1).double()
    net.get_submodule("12").conv = head
    out = same_as_line_by_line(net, x)
    assert out.shape == (2, 10, 1, 1)
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    net.add_module("12", nn.Conv2d(512, 3, 1).double())  # a whole line replaced
    assert same_as_line_by_line(net, x).shape == (2, 3, 1, 1)


def test_a_direct_write_into_modules_is_seen():
    """Eager quantization's convert writes ``module._modules[name] = new`` without setattr."""
    net = resnet18().eval()
    x = x64(1, 3, 32, 32)
    before = net(x)
    net.get_submodule("3")._modules["1"] = nn.Identity()
    after = same_as_line_by_line(net, x, train=False)
    assert not torch.equal(before, after)


def test_sync_batchnorm_conversion_runs_the_new_norms():
    net = resnet18().eval()
    x = x64(1, 3, 32, 32)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    norms = [m for m in converted.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(norms) == 20
    calls = []
    for m in norms:
        m.register_forward_hook(lambda *_: calls.append(1))
    converted(x)
    assert len(calls) == 20


def test_activation_checkpointing_wrappers_run_and_recompute():
    net = resnet18()
    x = x64(2, 3, 32, 32)
    expected = same_as_line_by_line(net, x)
    apply_activation_checkpointing(net, check_fn=lambda m: isinstance(m, BasicBlock))
    wrapped = [name for name, m in net.named_children() if type(m).__name__ == "CheckpointWrapper"]
    assert len(wrapped) == 8
    calls = []
    net.get_submodule("3._checkpoint_wrapped_module.1.conv").register_forward_hook(lambda *_: calls.append(1))
    net.train()
    torch.manual_seed(1)
    out = net(x)
    assert len(calls) == 1
    out.square().sum().backward()
    assert len(calls) == 2  # recomputed in backward: the wrapper ran
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


class LoRA(nn.Module):
    """What PEFT does: the original conv wrapped, plus a trainable low-rank path."""

    def __init__(self, base: nn.Conv2d, rank: int = 2) -> None:
        super().__init__()
        self.base = base
        self.down = nn.Conv2d(base.in_channels, rank, 1, bias=False, dtype=base.weight.dtype)
        self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False, dtype=base.weight.dtype)
        nn.init.normal_(self.up.weight)
        self.stride = base.stride

    def forward(self, x):
        return self.base(x) + self.up(self.down(x[..., :: self.stride[0], :: self.stride[1]]))


def test_lora_injection_runs_the_adapters():
    net = resnet18()
    x = x64(2, 3, 32, 32)
    before = net(x)
    for name in ("3.1", "5.2", "5.3.project"):
        conv_nerve = net.get_submodule(name)
        conv_nerve.conv = LoRA(conv_nerve.conv)
    out = same_as_line_by_line(net, x)
    assert not torch.allclose(out, before)
    assert net.get_submodule("5.3.project.conv.up").weight.grad.abs().sum() > 0


def test_fused_modules_run():
    net = resnet18().float().eval()
    x = torch.randn(1, 3, 32, 32)
    expected = net(x)
    old_norm = net.get_submodule("1.norm")
    seen = []
    old_norm.register_forward_hook(lambda *_: seen.append("old"))
    fused = torch.ao.quantization.fuse_modules(net, [["1.conv", "1.norm", "1.act"]], inplace=True)
    assert type(fused.get_submodule("1.conv")).__name__ == "ConvReLU2d"
    torch.testing.assert_close(fused(x), expected, rtol=1e-4, atol=1e-5)
    assert seen == []  # the folded norm is gone from the forward


def test_a_replica_runs_its_own_modules():
    """``nn.DataParallel`` makes replicas that copy the network's ``__dict__`` and set new children."""
    net = resnet18().eval()
    x = x64(1, 3, 32, 32)
    original = net(x)
    replica = net._replicate_for_data_parallel()
    head = copy.deepcopy(net.get_submodule("12"))
    with torch.no_grad():
        head.conv.weight.mul_(2)
    setattr(replica, "12", head)
    assert not torch.equal(replica(x), original)
    torch.testing.assert_close(replica(x), line_by_line(replica, x), rtol=0, atol=0)
    torch.testing.assert_close(net(x), original, rtol=0, atol=0)


def replicate_here(network: nn.Module) -> nn.Module:
    """One replica as ``torch.nn.parallel.replicate`` makes it (which needs accelerators): every module's
    ``_replicate_for_data_parallel()`` copy, its children set to the copies, its parameters set as
    plain tensors computed from the network's (not leaves), its buffers copied."""
    modules = list(network.modules())
    copies = {id(module): module._replicate_for_data_parallel() for module in modules}
    for module in modules:
        replica = copies[id(module)]
        replica._former_parameters = {}
        for key, child in module._modules.items():
            if child is None:
                replica._modules[key] = None
            else:
                setattr(replica, key, copies[id(child)])
        for key, parameter in module._parameters.items():
            if parameter is None:
                replica._parameters[key] = None
                continue
            setattr(replica, key, parameter * 1)
            replica._former_parameters[key] = getattr(replica, key)
        for key, buffer in module._buffers.items():
            replica._buffers[key] = None if buffer is None else buffer.clone()
    return copies[id(network)]


def test_a_replica_runs_the_networks_generated_code_on_its_own_modules():
    """nn.DataParallel replicates every step: the replica keeps the generated forward and rebinds it."""
    net = neurlink.resnet50().double().eval()
    x = x64(1, 3, 32, 32)
    net(x)
    expected = net(x)
    written = net._flat.graph_module
    replica = replicate_here(net)
    with torch.no_grad():
        assert torch.equal(replica(x), expected)
    graph_module = replica._flat.graph_module
    assert type(graph_module) is type(written) and graph_module is not written  # no code written again
    assert graph_module.m_1_conv is replica.get_submodule("1.conv") is not net.get_submodule("1.conv")
    assert torch.equal(net(x), expected) and net._flat.graph_module is written  # the network keeps its own
    torch.testing.assert_close(replica(x), line_by_line(replica, x), rtol=0, atol=0)
    other = replicate_here(net)
    other.get_submodule("5").note = "changed"  # an attribute of an inlined nerve: written again, not rebound
    with torch.no_grad():
        assert torch.equal(other(x), expected)
    assert type(other._flat.graph_module) is not type(written)


def test_writing_the_flat_forward_again_and_again_keeps_no_source():
    """fx keeps the source of every forward it generates; a graph written again forgets the old one."""
    from torch.fx.graph_module import _loader

    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), nv.Conv2d(3))]).double()
    x = x64(1, 3, 16, 16)
    net(x)
    net(x)
    gc.collect()
    before = len(_loader.eval_cache)
    for _ in range(30):
        net.get_submodule("2").conv = nn.Conv2d(8, 8, 3, padding=1).double()  # a child swapped: written again
        net(x)
    gc.collect()
    assert len(_loader.eval_cache) <= before + 2


class HalfConv(nv.Conv2d):
    def forward(self, x, base_shape=None):
        return super().forward(x) * 0.5


class TwiceBlock(nv.Nerve):
    """Sub-lines and a forward of its own, which must run."""

    def __init__(self) -> None:
        super().__init__()
        self.add((self.target_dims[0], nv.Conv2d(3)))

    def forward(self, x):
        return 2 * super().forward(x)


def test_overridden_forwards_run():
    torch.manual_seed(0)
    net = nv.build([((3, 1), nv.Input()), ((4, 2), HalfConv(3)), ((4, 2), TwiceBlock())]).double()
    x = x64(1, 3, 9, 9)
    half = net.get_submodule("1")
    assert torch.equal(net(x, outputs=[1])[0], half.conv(x) * 0.5)
    block = net.get_submodule("2")
    inner = block.get_submodule("1")
    torch.testing.assert_close(net(x), 2 * inner(net(x, outputs=[1])[0]), rtol=0, atol=0)
    same_as_line_by_line(net, x)
    # a forward patched on one instance
    half.forward = types.MethodType(lambda self, x, base_shape=None: torch.zeros(1, 4, 5, 5, dtype=x.dtype), half)
    torch.testing.assert_close(net(x), 2 * inner(torch.zeros(1, 4, 5, 5, dtype=torch.float64)), rtol=0, atol=0)


def test_hooks_on_nested_nerves_fire():
    net = resnet18()
    x = x64(2, 3, 32, 32)
    seen = []
    handle = net.get_submodule("5.3.project").register_forward_hook(lambda m, a, out: seen.append(out.shape))
    net(x)
    assert seen == [(2, 128, 4, 4)]
    handle.remove()
    net(x)
    assert len(seen) == 1


def test_backward_hooks_on_a_line_fire():
    net = resnet18()
    x = x64(2, 3, 32, 32)
    seen = []
    net.get_submodule("4").register_full_backward_pre_hook(lambda m, grad_out: seen.append("pre"))
    net.get_submodule("4").register_full_backward_hook(lambda m, grad_in, grad_out: seen.append("full"))
    same_as_line_by_line(net, x)
    assert seen == ["pre", "full"] * 2


@pytest.mark.parametrize("options", [{"outputs": [-1]}, {"output_intermediate": True}, {}])
def test_network_hooks_fire_for_every_calling_form(options):
    net = resnet18().eval()
    seen = []
    net.register_forward_pre_hook(lambda m, args, kwargs: seen.append(("pre", sorted(kwargs))), with_kwargs=True)
    net.register_forward_hook(lambda m, args, out: seen.append("post"))
    net(x64(1, 3, 32, 32), **options)
    assert seen == [("pre", sorted(options)), "post"]


def test_a_hook_keeping_a_norm_output_sees_it_unchanged():
    net = resnet18().eval()
    kept = {}
    net.get_submodule("3.2.norm").register_forward_hook(lambda m, a, out: kept.update(out=out, copy=out.clone()))
    net(x64(1, 3, 32, 32))
    assert torch.equal(kept["out"], kept["copy"])


def test_global_hooks_fire_on_every_nerve():
    net = resnet18().eval()
    seen = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, a, out: seen.append(type(m).__name__))
    try:
        net(x64(1, 3, 32, 32))
    finally:
        handle.remove()
    assert seen.count("BasicBlock") == 8 and seen.count("Conv2d_BN_ReLU") == 17 and seen[-1] == "Network"


def ups(transposed):
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 4), nv.Conv2d_BN_ReLU(3)),
            ((4, 2), transposed(4)),
            ((4, "(4, 4)"), nv.Conv2d(3)),  # a size-targeted conv
        ]
    ).double()


@pytest.mark.parametrize("size", [16, 13])
def test_pruned_transposed_and_sized_convs_train(size):
    torch.manual_seed(0)
    net = ups(nv.ConvTransposed2d)
    prune.l1_unstructured(net.get_submodule("2.conv"), "weight", amount=0.5)
    prune.random_unstructured(net.get_submodule("3.conv"), "weight", amount=0.5)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x = x64(2, 3, size, size)
    for _ in range(3):
        optimizer.zero_grad()
        same_as_line_by_line(net, x)
        net(x).sum().backward()
        optimizer.step()
    conv = net.get_submodule("2.conv")
    assert (conv.weight == 0).sum() >= conv.weight.numel() // 2  # the mask is applied in every call


def test_weight_norm_and_spectral_norm_apply():
    torch.manual_seed(0)
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv1d(3)), ((4, 0.5), nv.ConvTransposed1d(4))]).double()
    parametrizations.weight_norm(net.get_submodule("2.conv"))
    x = x64(2, 3, 11)
    for _ in range(2):
        same_as_line_by_line(net, x)
    with torch.no_grad():
        net.get_submodule("2.conv").parametrizations.weight.original0.mul_(0)  # g = 0: the output is the bias
    bias = net.get_submodule("2.conv").bias
    torch.testing.assert_close(net(x), bias.view(1, -1, 1).expand(2, 4, 22), rtol=0, atol=0)
    hifigan = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv1d(3)), ((4, 0.5), nv.ConvTransposed1d(4))]).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        nn.utils.weight_norm(hifigan.get_submodule("2.conv"))  # the older, hook-based weight norm (HiFi-GAN's)
    optimizer = torch.optim.SGD(hifigan.parameters(), lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        same_as_line_by_line(hifigan, x)
        optimizer.step()
    sized = ups(nv.ConvTransposed2d)
    parametrizations.spectral_norm(sized.get_submodule("3.conv"))
    same_as_line_by_line(sized, x64(2, 3, 14, 14), train=False)  # in training, each call iterates the norm


def two_inputs():
    torch.manual_seed(0)
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((5, 1), nv.Input()),
            ((8, 1), nv.Conv2d[1](3)),  # a fresh conv output of the second input ...
            ((8, 1), nv.Conv2d[0](3)),
            ((8, 1), nv.Add[[2, 3]]()),  # ... is the left operand of the sum
        ]
    ).double()


def test_vmap_over_one_of_two_inputs():
    net = two_inputs().eval()
    xs, y = x64(4, 1, 3, 6, 6), x64(1, 5, 6, 6)
    batched = torch.func.vmap(lambda x: net([x, y]))(xs)
    torch.testing.assert_close(batched, torch.stack([net([x, y]) for x in xs]))


def test_batch_broadcast_between_inputs():
    net = two_inputs()
    out = same_as_line_by_line(net, [x64(4, 3, 6, 6), x64(1, 5, 6, 6)], train=False)
    assert out.shape == (4, 8, 6, 6)


def test_autocast_gives_the_line_by_line_dtype():
    torch.manual_seed(0)
    net = nv.build([((8, 1), nv.Input()), ((8, 1), nv.Conv2d(3)), ((8, 1), nv.Add[[1, 0]]())]).eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out, ref = net(x), line_by_line(net, x)
    assert out.dtype == ref.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_compiled_network_follows_a_swapped_head():
    net = resnet18().float().eval()
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert compiled(x).shape == (1, 1000, 1, 1)
        net.get_submodule("12").conv = nn.Conv2d(512, 10, 1)
        assert compiled(x).shape == (1, 10, 1, 1)
        torch._dynamo.reset()
        compiled = torch.compile(net, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x, outputs=["layer1"])[0], net(x, outputs=["layer1"])[0])


def test_a_backward_pre_hook_on_a_residual_producer():
    net = resnet18()
    seen = []
    net.get_submodule("3.2.norm").register_full_backward_pre_hook(lambda m, grad: seen.append("pre"))
    same_as_line_by_line(net, x64(2, 3, 32, 32))
    assert seen == ["pre", "pre"]


@pytest.mark.parametrize("change", ["instance forward", "class swap"])
def test_a_producer_that_returns_its_input_is_not_summed_into(change):
    torch.manual_seed(0)
    net = nv.build([((8, 1), nv.Input()), ((8, 1), nn.BatchNorm2d(8)), ((8, 1), nv.Add[[1, 0]]())]).double().eval()
    x = x64(1, 8, 4, 4)
    net(x)
    norm = net.get_submodule("1")
    if change == "instance forward":
        norm.forward = lambda t: t  # "disable the norm"
    else:
        norm.__class__ = nn.Identity
    kept = x.clone()
    torch.testing.assert_close(net(x), 2 * kept, rtol=0, atol=0)
    assert torch.equal(x, kept)  # the input is not overwritten


def test_a_forward_patched_on_a_nerve_class_after_the_first_call():
    net = resnet18().eval()
    x = x64(1, 3, 32, 32)
    net(x)

    class Doubled(BasicBlock):
        pass

    original = Doubled.forward
    Doubled.forward = lambda self, x, base_shape=None: original(self, x) * 2
    net.get_submodule("3").__class__ = Doubled
    torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)


def test_an_attribute_the_steps_read_is_followed():
    torch.manual_seed(0)
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d_BN_ReLU(3))]).double().eval()
    x = x64(1, 3, 6, 6)
    conv = net.get_submodule("1")
    conv.norm.running_mean.fill_(0.5)
    before = net(x)
    conv.norm_after_act = True
    after = net(x)
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, line_by_line(net, x), rtol=0, atol=0)


def test_a_compiled_nerve_is_called():
    net = resnet18().float().eval()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    net.get_submodule("3").compile(backend=backend)
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    assert graphs
    torch._dynamo.reset()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_jit_trace_records_a_sum_that_broadcasts_later():
    net = two_inputs().float().eval()
    traced = torch.jit.trace(net, ([torch.randn(1, 3, 6, 6), torch.randn(1, 5, 6, 6)],), check_trace=False)
    x, y = torch.randn(4, 3, 6, 6), torch.randn(1, 5, 6, 6)
    torch.testing.assert_close(traced([x, y]), net([x, y]))


def test_compile_does_not_recompile_on_train_and_eval():
    net = resnet18(num_classes=10).float()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(net, backend=backend)
    x = torch.randn(2, 3, 32, 32)
    for step in range(6):
        net.train(step % 2 == 0)
        compiled(x)
    nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(1))])  # another network built meanwhile
    compiled(x)
    assert len(graphs) <= 2  # one per mode, as for a hand-written model
    torch._dynamo.reset()
