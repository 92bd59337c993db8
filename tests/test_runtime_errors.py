"""Errors while a network runs name the line they happened in; definitions are not layers."""

import copy
import pickle
import sys

import pytest
import torch

import neurlink
import neurlink.nerves as nv


class Bug(nv.Nerve):
    """A custom nerve whose forward halves the size it declares keeping."""

    def forward(self, x):
        return x[:, :, ::2]


class BadValue(nv.Nerve):
    def forward(self, x):
        raise ValueError("a user's own check failed")


class Block(nv.Nerve):
    def __init__(self, inner):
        super().__init__()
        dims = self.target_dims[0]
        self.add([(dims, nv.Conv2d(3)), (dims, inner()), (dims, nv.Add[[0, -1]]())])


def test_a_size_no_stride_reaches_names_the_line():
    net = nv.build([((3, 1), nv.Input()), ((16, "(7, 7)"), nv.Conv2d(3))])
    with pytest.raises(neurlink.InputError, match=r"(?s)^line 1: \(\(16, '\(7, 7\)'\), Conv2d\(3\)\).*no stride"):
        net(torch.randn(1, 3, 5, 5))
    assert net(torch.randn(1, 3, 14, 14)).shape == (1, 16, 7, 7)  # still usable
    # the sizes it names do reach 7: ceil(size / s) == 7 for s = 1, 2, 3 (no wider than the kernel); not 16
    with pytest.raises(neurlink.InputError, match=r"allowed: .*\(7, 13-14, 19-21, \.\.\.\), or an adaptive"):
        net(torch.randn(1, 3, 16, 16))
    for size in (7, 13, 14, 19, 21):
        assert net(torch.randn(1, 3, size, size)).shape == (1, 16, 7, 7)
    with pytest.raises(neurlink.InputError, match="needs stride 4, but a kernel 3 wide would never read 1 of every 4"):
        net(torch.randn(1, 3, 28, 28))


def test_a_size_no_transposed_stride_reaches_says_which_sizes_do():
    net = nv.build([((3, 1), nv.Input()), ((8, 4), nv.Conv2d(3)), ((8, "(7, 7)"), nv.ConvTransposed2d(3))])
    with pytest.raises(
        neurlink.InputError, match=r"allowed: input sizes n where a whole stride s gives s \* \(n - 1\) < 7"
    ):
        net(torch.randn(1, 3, 64, 64))  # line 1 is 16: no stride takes 16 up to 7
    assert net(torch.randn(1, 3, 16, 16)).shape == (1, 8, 7, 7)  # 4 -> 7 with stride 2


@pytest.mark.parametrize("options", [{}, {"outputs": [-1]}])
def test_a_torch_error_in_a_nested_line_names_the_path_and_chains_the_original(options):
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 2), Block[-1, "b"](Bug))])
    with pytest.raises(neurlink.ForwardError) as caught:
        net(torch.randn(1, 3, 16, 16), **options)
    message = str(caught.value)
    assert message.startswith("line 2 ('b') > line 3: ((8, 2), Add[[0, -1]]())")
    assert "RuntimeError: The size of tensor a (8) must match the size of tensor b (4)" in message
    assert type(caught.value.__cause__) is RuntimeError
    assert isinstance(caught.value, RuntimeError)  # handlers for torch's errors still catch it


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_other_exceptions_keep_their_type_and_get_a_note():
    net = nv.build([((3, 1), nv.Input()), ((3, 1), Block(BadValue))])
    with pytest.raises(ValueError, match="a user's own check failed") as caught:
        net(torch.randn(1, 3, 8, 8))
    assert any("line 1" in note and "line 2: ((3, 1), BadValue())" in note for note in caught.value.__notes__)


def test_a_definition_called_like_a_layer():
    with pytest.raises(neurlink.NeurlinkError, match=r"Conv2d\(3\) is a definition, not a layer.*nv\.build"):
        nv.Conv2d(3)(torch.randn(1, 3, 8, 8))


def test_a_line_returning_other_dims_than_declared_is_named_on_the_first_call():
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 2), Bug())])
    with pytest.raises(
        neurlink.OutputError, match=r"(?s)^line 2: \(\(8, 2\), Bug\(\)\).*\(N, 8, 8, 8\).*\(N, 8, 4, 8\)"
    ):
        net(torch.randn(1, 3, 16, 16))
    plain = nv.build([((3, 1), nv.Input()), ((32, 1), torch.nn.Conv2d(3, 16, 3, padding=1))])
    with pytest.raises(neurlink.OutputError, match=r"declares \(32, 1\), that is \(N, 32, 5, 5\).*\(N, 16, 5, 5\)"):
        plain(torch.randn(1, 3, 5, 5))
    summary = neurlink.summary(net, (1, 3, 16, 16))
    assert "MISMATCH, declared (1, 8, 8, 8)" in str(summary)
    assert summary.rows[2].declared_shapes == ((1, 8, 8, 8),) and summary.rows[1].declared_shapes is None


def test_a_multi_output_line_returning_one_tensor():
    class One(nv.Nerve):
        def forward(self, x):
            return x

    net = nv.build([((4, 1), nv.Input()), ((2, 1), (2, 1), One())])
    with pytest.raises(neurlink.OutputError, match="declares 2 outputs, but its module returned \\(N, 4, 3\\)"):
        net(torch.randn(1, 4, 3))


def test_changed_modules_are_trusted_and_copies_keep_checking():
    torch.manual_seed(0)
    net = neurlink.resnet18(num_classes=10).eval()
    net.get_submodule("12").conv = torch.nn.Conv2d(512, 3, 1)  # fine-tuning: the line said 10
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3, 1, 1)
    assert copy.deepcopy(net)(torch.randn(1, 3, 32, 32)).shape == (1, 3, 1, 1)
    buggy = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 2), Bug())])
    for copied in (copy.deepcopy(buggy), pickle.loads(pickle.dumps(buggy))):  # copies made as built still check
        with pytest.raises(neurlink.OutputError):
            copied(torch.randn(1, 3, 16, 16))


class ToSequence(nv.Nerve):
    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, (1, 16)).flatten(2)


def test_lines_of_another_rank_than_the_base_are_checked_by_their_own_shape():
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d(3)),
            ((8, "(16,)"), ToSequence()),
            ((8, "(16,)"), nv.Conv1d(3)),
        ]
    )
    for _ in range(2):
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 8, 16)


def test_a_weight_replaced_in_place_is_a_change_the_check_trusts():
    net = neurlink.resnet18(num_classes=10).eval()
    net(torch.randn(1, 3, 32, 32))
    head = net.get_submodule("12.conv")
    head.weight = torch.nn.Parameter(head.weight[:3].detach())  # structured pruning of the head
    head.bias = torch.nn.Parameter(head.bias[:3].detach())
    assert net(torch.randn(1, 3, 48, 48)).shape == (1, 3, 1, 1)


def test_a_nerve_with_sub_lines_and_its_own_forward_must_pass_the_base_shape_on():
    class Up(nv.Nerve):
        def __init__(self):
            super().__init__()
            self.add((self.target_dims[0], nv.Interpolate()))

        def forward(self, x):
            return super().forward(x)

    with pytest.raises(neurlink.DefinitionError, match="sub-lines need the base shape, but its forward"):
        nv.build([((3, 1), nv.Input()), ((3, 2), nv.MaxPool2d(2)), ((3, 1), Up())])
