"""neurlink.summary: the reference figures of the zoo, the rows of a small definition, the totals."""

from __future__ import annotations

import pytest
import torch
from networks import Residual, small  # shared with test_graph.py

import neurlink
import neurlink.nerves as nv
from neurlink import InputError, NeurlinkError, nn

# At 1x3x16x16. stem: 8*3*3*3 weights + 2*8 norm = 232 parameters, 8*8*8 outputs x 27 = 13,824 MACs;
# block conv: 8*8*3*3 + 16 = 592, 512 outputs x 72 = 36,864; head: 12*10 + 10 = 130, 10 x 12 = 120.
ROWS = [
    ("0", 0, None, (), "Input()", "(3, 1)", ((1, 3, 16, 16),), 0, 0),
    ("1", 0, "stem", ("0",), "Conv2d_BN_ReLU[-1, 'stem'](3)", "(8, 2)", ((1, 8, 8, 8),), 232, 13_824),
    ("2", 0, None, ("1",), "Residual()", "(8, 2)", ((1, 8, 8, 8),), 592, 36_864),
    ("2.1", 1, None, ("1",), "Conv2d_BN_ReLU(3)", "(8, 2)", ((1, 8, 8, 8),), 592, 36_864),
    ("2.2", 1, None, ("1", "2.1"), "Add[[0, -1]]()", "(8, 2)", ((1, 8, 8, 8),), 0, 0),
    ("3", 0, None, ("2",), "Split()", "(4, 2), (4, 2)", ((1, 4, 8, 8), (1, 4, 8, 8)), 0, 0),
    ("4", 0, None, ("3[1]", "1"), "Concat[[output(3, 1), 'stem']]()", "(12, 2)", ((1, 12, 8, 8),), 0, 0),
    ("5", 0, None, ("4",), "AvgPool2d()", "(12, '(1, 1)')", ((1, 12, 1, 1),), 0, 0),
    ("6", 0, None, ("5",), "Conv2d(1)", "(10, '(1, 1)')", ((1, 10, 1, 1),), 130, 120),
]

TABLE = """\
line   tag   inputs   nerve                             dims            output          params    MACs
-----  ----  -------  --------------------------------  --------------  --------------  ------  ------
0                     Input()                           (3, 1)          (1, 3, 16, 16)       0       0
1      stem  0        Conv2d_BN_ReLU[-1, 'stem'](3)     (8, 2)          (1, 8, 8, 8)       232  13,824
2            1        Residual()                        (8, 2)          (1, 8, 8, 8)       592  36,864
  2.1        1        Conv2d_BN_ReLU(3)                 (8, 2)          (1, 8, 8, 8)       592  36,864
  2.2        1, 2.1   Add[[0, -1]]()                    (8, 2)          (1, 8, 8, 8)         0       0
3            2        Split()                           (4, 2)          (1, 4, 8, 8)         0       0
                                                        (4, 2)          (1, 4, 8, 8)
4            3[1], 1  Concat[[output(3, 1), 'stem']]()  (12, 2)         (1, 12, 8, 8)        0       0
5            4        AvgPool2d()                       (12, '(1, 1)')  (1, 12, 1, 1)        0       0
6            5        Conv2d(1)                         (10, '(1, 1)')  (1, 10, 1, 1)      130     120
-----  ----  -------  --------------------------------  --------------  --------------  ------  ------
Total params:         954
Trainable params:     954
Non-trainable params: 0
Total MACs:           50.81 K (50,808)
Input size:           (1, 3, 16, 16)
Activation memory:    12.09 KiB (outputs of the network's own lines)
Parameter memory:     3.73 KiB"""


def as_tuple(row) -> tuple:
    return (row.path, row.level, row.tag, row.inputs, row.nerve, row.dims, row.output_shapes, row.params, row.macs)


@pytest.fixture(scope="module")
def resnet50_summary():
    with torch.device("meta"):  # the same forward and counts, without memory or compute
        model = neurlink.create_model("resnet50")
    return neurlink.summary(model, (1, 3, 224, 224))


@pytest.fixture(scope="module")
def resnet18_summary():
    return neurlink.summary(neurlink.create_model("resnet18"), (1, 3, 224, 224))  # a real forward on the CPU


def test_resnet50_reference_figures(resnet50_summary):
    assert resnet50_summary.total_params == 25_557_032 == resnet50_summary.trainable_params
    assert resnet50_summary.total_macs / 1e9 == pytest.approx(4.09, abs=0.01)  # torchvision's 4.089 "GFLOPS"
    assert "Total MACs:           4.09 G" in str(resnet50_summary)
    assert [row.output_shapes for row in resnet50_summary.rows][-1] == ((1, 1000, 1, 1),)


def test_resnet18_reference_figures(resnet18_summary):
    assert resnet18_summary.total_params == 11_689_512
    assert resnet18_summary.total_macs / 1e9 == pytest.approx(1.81, abs=0.01)
    assert sum(row.params for row in resnet18_summary.rows) == 11_689_512  # every parameter is in a line
    assert sum(row.macs for row in resnet18_summary.rows) == resnet18_summary.total_macs
    stem = resnet18_summary.rows[1]
    assert (stem.tag, stem.nerve, stem.dims, stem.output_shapes) == (
        "stem",
        "Conv2d_BN_ReLU[-1, 'stem'](7)",
        "(64, 2)",
        ((1, 64, 112, 112),),
    )
    assert stem.macs == 64 * 112 * 112 * 3 * 7 * 7


def test_rows_of_a_small_definition():
    result = neurlink.summary(small(), (1, 3, 16, 16), depth=2)
    assert [as_tuple(row) for row in result.rows] == ROWS
    assert (result.total_params, result.trainable_params, result.total_macs) == (954, 954, 50_808)
    # the network's own lines (input included): 768 + 512 + 512 + 2 * 256 + 768 + 12 + 10 floats
    assert result.activation_bytes == 3094 * 4
    assert str(result) == TABLE


def test_depth_one_lists_the_network_lines_only():
    result = neurlink.summary(small(), (2, 3, 16, 16))
    assert [row.path for row in result.rows] == ["0", "1", "2", "3", "4", "5", "6"]
    assert result.total_macs == 2 * 50_808  # the whole batch
    assert result.rows[2].output_shapes == ((2, 8, 8, 8),)


def test_trainable_params_dtype_device_and_given_inputs():
    net = small().double()
    net.get_submodule("1").requires_grad_(False)
    result = neurlink.summary(net, (1, 3, 9, 9))  # dtype from the parameters: float64
    assert (result.total_params, result.trainable_params, result.non_trainable_params) == (954, 722, 232)
    assert result.activation_bytes % 8 == 0 and result.param_bytes == 954 * 8
    assert result.rows[1].output_shapes == ((1, 8, 5, 5),)
    given = neurlink.summary(net, inputs=torch.zeros(1, 3, 9, 9, dtype=torch.float64), device="cpu")
    assert [row.output_shapes for row in given.rows] == [row.output_shapes for row in result.rows]
    with pytest.raises(InputError, match="dtype torch.float32, but the network's parameters are torch.float64"):
        neurlink.summary(net, (1, 3, 9, 9), dtype=torch.float32)


def test_several_inputs():
    net = nv.build(
        [
            ((3, 1), nv.Input["image"]()),
            ((1, 2), nv.Input["mask"]()),
            ((8, 2), nv.Conv2d["image"](3)),
            ((9, 2), nv.Concat[[-1, "mask"]]()),
        ]
    )
    result = neurlink.summary(net, [(1, 3, 32, 32), (1, 1, 16, 16)])
    assert [(row.path, row.inputs, row.output_shapes) for row in result.rows] == [
        ("0", (), ((1, 3, 32, 32),)),
        ("1", (), ((1, 1, 16, 16),)),
        ("2", ("0",), ((1, 8, 16, 16),)),
        ("3", ("2", "1"), ((1, 9, 16, 16),)),
    ]
    assert result.input_sizes == ((1, 3, 32, 32), (1, 1, 16, 16))


def test_model_is_left_as_it_was():
    net = small().train()
    norm = net.get_submodule("1.norm")
    before = norm.running_mean.clone(), int(norm.num_batches_tracked)
    neurlink.summary(net, (1, 3, 16, 16))
    assert net.training and all(m.training for m in net.modules())
    assert torch.equal(norm.running_mean, before[0]) and int(norm.num_batches_tracked) == before[1]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_plain_modules_and_base_shape_nerves():
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((4, 4), nv.Conv2d(3)),
            ((4, 1), nv.Interpolate("bilinear")),  # sized from the base shape at call time
            ((4, 1), nn.ReLU()),
        ]
    )
    result = neurlink.summary(net, (1, 3, 30, 17))
    assert [row.output_shapes[0] for row in result.rows] == [(1, 3, 30, 17), (1, 4, 8, 5), (1, 4, 30, 17)] + [
        (1, 4, 30, 17)
    ]
    assert result.rows[3].nerve == "ReLU()"


def test_mistakes_are_clear():
    net = small()
    with pytest.raises(
        InputError, match=r"line 0 \(\(3, 1\), Input\(\)\): expected a tensor of shape \(N, 3, \*, \*\).*4 channels"
    ):
        neurlink.summary(net, (1, 4, 16, 16))
    with pytest.raises(InputError, match="got 2 input"):
        neurlink.summary(net, [(1, 3, 16, 16), (1, 3, 16, 16)])
    with pytest.raises(NeurlinkError, match="input_size="):
        neurlink.summary(net, (1, 3, "16"))
    with pytest.raises(NeurlinkError, match="depth=0"):
        neurlink.summary(net, (1, 3, 16, 16), depth=0)
    with pytest.raises(NeurlinkError, match="built by nv.build"):
        neurlink.summary(nn.Conv2d(3, 3, 1), (1, 3, 8, 8))
    with pytest.raises(NeurlinkError, match="the network is on cpu, not on meta"):
        neurlink.summary(net, (1, 3, 16, 16), device="meta")


class Stage(nv.Nerve):
    """A block holding a block: its sub-line 2 is a Residual."""

    def __init__(self) -> None:
        super().__init__()
        dims = self.target_dims[0]
        self.add([(dims, nv.Conv2d(3)), (dims, Residual()), (dims, nv.Add[[0, -1]]())])


def test_blocks_within_blocks_expand_to_the_depth_asked():
    net = nv.build([((3, 1), nv.Input()), ((4, 2), nv.Conv2d(3)), ((4, 2), Stage()), ((4, 2), Stage())])
    deep = neurlink.summary(net, (1, 3, 8, 8), depth=3)
    assert [(row.path, row.inputs) for row in deep.rows if row.path.startswith("3")] == [
        ("3", ("2",)),
        ("3.1", ("2",)),  # the block's input is line 2's output
        ("3.2", ("3.1",)),
        ("3.2.1", ("3.1",)),  # the inner block's input, two levels up
        ("3.2.2", ("3.1", "3.2.1")),
        ("3.3", ("2", "3.2")),
    ]
    shallow = neurlink.summary(net, (1, 3, 8, 8), depth=2)
    assert len(shallow.rows) == 10 and len(deep.rows) == 14
    assert deep.total_macs == shallow.total_macs == 1728 + 2 * 4608
    assert deep.rows[2].macs == deep.rows[3].macs + deep.rows[4].macs  # line 2 = 2.1 + 2.2 (+ 2.3, an Add)
