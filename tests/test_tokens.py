"""Token sequences in the grammar: the arithmetic of their declarations, the build's layout checks, the
token nerves against plain torch (nn.MultiheadAttention, torchvision's EncoderBlock, nn.LayerNorm), and
the tools (flat forward, fx, export, summary, checkpoints) on networks of tokens."""

from __future__ import annotations

import math

import pytest
import torch
from networks import line_by_line
from torch import fx, nn
from torchvision.models.vision_transformer import EncoderBlock

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, InputError, NerveArgumentError, OutputError
from neurlink.interop.torchvision._vit import transformer_block_pairs
from neurlink.shapes import Dims, ShapeSpec

RATIOS = (1, 2, 3, 4, 8, 14, 16, 32)


# --- declarations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", RATIOS)
def test_a_grid_of_tokens_has_prod_ceil_base_over_ratio_tokens_after_its_extra_ones(ratio: int) -> None:
    for extra in (0, 1, 5):
        spec = ShapeSpec(nv.tokens(ratio, extra=extra))
        for h in range(1, 41):
            for w in (1, 7, 33, 40):
                assert spec.size((h, w)) == (extra + -(-h // ratio) * -(-w // ratio),)
                assert spec.grid((h, w)) == (-(-h // ratio), -(-w // ratio))
        assert spec.size((45,)) == (extra + -(-45 // ratio),)  # a 1-d base: a sequence at a ratio of it


def test_declarations_read_as_written_round_trip_and_compare_by_meaning() -> None:
    written = nv.tokens(16, extra=1)
    assert repr(written) == "tokens(16, extra=1)" and written == "tokens(16, extra=1)"  # the text, shown as the call
    assert repr(Dims(768, written)) == "(768, tokens(16, extra=1))"
    assert ShapeSpec(written) == ShapeSpec(" tokens(16, extra=1) ") == ShapeSpec("tokens(16.0, extra=1)")
    assert ShapeSpec(nv.tokens((4, 4))).same_as(ShapeSpec(nv.tokens(4)), 2)
    assert not ShapeSpec(nv.tokens(4)).same_as(ShapeSpec(4))  # tokens are not a map at that ratio
    assert not ShapeSpec(nv.tokens(4, extra=1)).same_as(ShapeSpec(nv.tokens(4)))
    assert ShapeSpec(nv.tokens(length=77)).size((3, 3)) == (77,)
    assert ShapeSpec(nv.tokens(1 / 3)).ratios == (ShapeSpec(1 / 3).ratios[0],)
    assert Dims(8, nv.tokens(2, extra=1)).tensor_shape((4, 6)) == (7, 8)  # (L, C): channels last
    assert ShapeSpec(nv.tokens(2)).layout == "tokens" and ShapeSpec("()").layout == "vector"
    import pickle

    assert repr(pickle.loads(pickle.dumps(Dims(8, written)))) == "(8, tokens(16, extra=1))"


@pytest.mark.parametrize(
    "written, message",
    [
        ("tokens(0)", "ratio 0 is not a positive number"),
        ("tokens(extra=1)", "neither a ratio nor a length"),
        ("tokens(2, length=3)", "both a ratio and a length"),
        ("tokens(2, extra=-1)", "extra=-1 is not an int >= 0"),
        ("tokens(2, extra=True)", "extra=True is not an int >= 0"),
        ("tokens(length=0)", "length=0 is not an int >= 1"),
        ("tokens(__import__('os'))", "its arguments are not literals"),
        ("tokens(2, width=3)", "takes one ratio, extra= and length="),
        ("tokens[2]", "is not a token declaration"),
    ],
)
def test_a_wrong_declaration_says_what_is_allowed(written: str, message: str) -> None:
    with pytest.raises(DimsError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        ShapeSpec(written)
    assert "tokens(ratio)" in str(caught.value)


# --- the build's layout checks --------------------------------------------------------------------

STEM = [((3, 1), nv.Input()), ((32, 4), nv.Conv2d(4)), ((32, nv.tokens(4)), nv.ToTokens())]


def _fails(lines, error=DimsError) -> str:
    with pytest.raises(error) as caught:
        nv.build(lines)
    return str(caught.value)


def test_a_map_nerve_after_tokens_names_the_line_and_the_line_to_add() -> None:
    text = _fails([*STEM, ((32, 4), nv.Conv2d(3))])
    assert "line 3: ((32, 4), Conv2d(3))" in text
    assert "Conv2d works on a channels-first map (N, C, *spatial) or vectors (N, C)" in text
    assert "its input line 2 holds tokens (N, L, C)" in text and "nv.ToMap()" in text
    assert "holds tokens" in _fails([*STEM, ((32, nv.tokens(4)), nn.BatchNorm1d(32))])  # a plain torch module too
    assert "holds tokens" in _fails([*STEM, ((32, 2), nv.Interpolate())])


def test_attention_after_a_map_asks_for_a_token_line() -> None:
    text = _fails([*STEM[:2], ((32, 4), nv.SelfAttention(4))])
    assert "SelfAttention works on tokens (N, L, C), but its input line 1 holds a channels-first map" in text
    assert "((C, nv.tokens(r)), nv.ToTokens()) first" in text


def test_a_norm_over_a_maps_last_dim_is_refused() -> None:
    text = _fails([*STEM[:2], ((32, 4), nn.LayerNorm(32))])
    assert "nn.LayerNorm acts on the last dim, but line 1 is a channels-first map" in text
    assert "nv.LayerNorm() for its channels" in text
    assert "nv.PointwiseLinear()" in _fails([*STEM[:2], ((32, 4), nn.Linear(32, 32))])
    nv.build([*STEM, ((32, nv.tokens(4)), nn.LayerNorm(32))])  # over tokens, the last dim is the channels


@pytest.mark.parametrize(
    "line, message",
    [
        (((32, nv.tokens(8)), nv.ToTokens()), "makes the tokens of line 1's grid, tokens(4)"),
        (((32, nv.tokens(4, extra=1)), nv.ToTokens()), "extra tokens come from a line of their own"),
        (((16, nv.tokens(4)), nv.ToTokens()), "keeps the channels, but the line turns 32 into 16"),
    ],
)
def test_to_tokens_declares_its_maps_grid(line, message: str) -> None:
    assert message in _fails([*STEM[:2], line])


@pytest.mark.parametrize(
    "line, error, message",
    [
        (((32, 8), nv.ToMap()), DimsError, "lands on the grid the tokens of line 2 lie on, ratio 4"),
        (((32, nv.tokens(4, extra=2)), nv.ClassToken()), DimsError, "which makes tokens(4, extra=1)"),
        (((32, nv.tokens(4, extra=1)), nv.ClassToken(0)), NerveArgumentError, "count=0 is not a positive int"),
        (((32, nv.tokens(4)), nv.SelfAttention(5)), NerveArgumentError, "32 channels do not split into 5 heads"),
        (((32, nv.tokens(4)), nv.SelfAttention(4, dropout=2.0)), NerveArgumentError, "dropout=2.0"),
        (((32, nv.tokens(4)), nv.PositionEmbedding()), NerveArgumentError, "the size of the base it is built for"),
        (((32, nv.tokens(4)), nv.PositionEmbedding((32, 32, 32))), NerveArgumentError, "not an int or a tuple of 2"),
        (((32, "()"), nv.Linear()), DimsError, "Linear acts on each token of line 2"),
        (((32, nv.tokens(4)), nv.MLP(0)), NerveArgumentError, "hidden=0 is not a positive int"),
        (((64, nv.tokens(8)), nv.MLP(64)), DimsError, "MLP acts on each token of line 2"),
        (((32, nv.tokens(4)), nv.TransformerBlock(4, 64, drop_path=-1)), NerveArgumentError, "drop_path=-1"),
        (((32, nv.tokens(4)), nv.ToVector(0)), DimsError, "ToVector makes vectors (N, C)"),
        (((32, "()"), nv.ToVector("max")), NerveArgumentError, "a token index (0: the first) or 'mean'"),
        (((32, nv.tokens(4)), nv.Embedding(10)), DimsError, "Embedding reads token ids (N, L)"),
        (((32, nv.tokens(4)), nv.LayerNorm(0)), NerveArgumentError, "eps=0 is not a positive number"),
    ],
)
def test_token_nerves_check_their_line(line, error, message: str) -> None:
    text = _fails([*STEM, line], error)
    assert message in text and "line 3:" in text


def test_inputs_of_tokens_and_their_forms_are_checked() -> None:
    assert "extra tokens are made by a line of their own" in _fails([((8, nv.tokens(1, extra=1)), nv.Input())])
    net = nv.build([((8, nv.tokens(1)), nv.Input()), ((8, nv.tokens(1)), nv.LayerNorm())])
    assert net(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    with pytest.raises(InputError, match=r"expected a tensor of shape \(N, L, 8\), got \(2, 8, 5, 1\)"):
        net(torch.randn(2, 8, 5, 1))
    with pytest.raises(InputError, match="4 channels, but the line declares 8"):
        net(torch.randn(2, 5, 4))
    ids = nv.build([((1, nv.tokens(1)), nv.Input(dtype=torch.long)), ((8, nv.tokens(1)), nv.Embedding(10))])
    assert ids(torch.randint(0, 10, (2, 7))).shape == (2, 7, 8)
    with pytest.raises(InputError, match=r"is \(N, L\) \(the line declares 1 channel: no channel dim\)"):
        ids(torch.randint(0, 10, (2, 7, 1)))
    fixed = nv.build(
        [((1, nv.tokens(length=4)), nv.Input(dtype=torch.long)), ((8, nv.tokens(length=4)), nv.Embedding(10))]
    )
    with pytest.raises(InputError, match=r"declares the length tokens\(length=4\)"):
        fixed(torch.zeros(1, 5, dtype=torch.long))


def test_the_first_call_holds_token_lines_to_their_length_and_channels() -> None:
    class DropsAToken(nn.Module):
        def forward(self, x):
            return x[:, 1:]

    net = nv.build([*STEM, ((32, nv.tokens(4)), DropsAToken())])
    with pytest.raises(OutputError) as caught:
        net(torch.randn(1, 3, 16, 16))
    text = str(caught.value)
    assert "line 3" in text and "that is (N, 16, 32) for this input (tokens, channels last)" in text
    assert "returned (N, 15, 32)" in text


# --- against plain torch --------------------------------------------------------------------------


def _tokens_net(*lines, channels=32):
    return nv.build([((channels, nv.tokens(1)), nv.Input()), *lines]).eval()


def test_self_attention_is_multihead_attention_with_its_weights() -> None:
    torch.manual_seed(0)
    for causal in (False, True):
        net = _tokens_net(((32, nv.tokens(1)), nv.SelfAttention(4, causal=causal)))
        theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
        attention = net[1]
        attention.qkv.weight.data.copy_(theirs.in_proj_weight)
        attention.qkv.bias.data.copy_(theirs.in_proj_bias)
        attention.proj.load_state_dict(theirs.out_proj.state_dict())
        x = torch.randn(3, 9, 32)
        mask = torch.ones(9, 9, dtype=torch.bool).triu(1) if causal else None
        with torch.no_grad():
            expected = theirs(x, x, x, attn_mask=mask, need_weights=False)[0]
            torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)


def test_a_padding_mask_leaves_the_padded_tokens_out_as_key_padding_mask_does() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((32, nv.tokens(1)), nv.Input["x"]()),
            ((1, nv.tokens(1)), nv.Input["mask"](dtype=torch.bool)),
            ((32, nv.tokens(1)), nv.SelfAttention[["x", "mask"]](4)),
        ]
    ).eval()
    theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    net[2].qkv.weight.data.copy_(theirs.in_proj_weight)
    net[2].qkv.bias.data.copy_(theirs.in_proj_bias)
    net[2].proj.load_state_dict(theirs.out_proj.state_dict())
    x, mask = torch.randn(2, 6, 32), torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    with torch.no_grad():
        expected = theirs(x, x, x, key_padding_mask=mask, need_weights=False)[0]
        torch.testing.assert_close(net({"x": x, "mask": mask}), expected, rtol=1e-5, atol=1e-6)


def test_cross_attention_is_multihead_attention_of_queries_to_a_memory() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((32, nv.tokens(1)), nv.Input["queries"]()),
            ((16, nv.tokens(length=5)), nv.Input["memory"]()),
            ((32, nv.tokens(1)), nv.CrossAttention[["queries", "memory"]](4)),
        ]
    ).eval()
    theirs = nn.MultiheadAttention(32, 4, kdim=16, vdim=16, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_bias.normal_()
        ours = net[2]
        ours.q.weight.copy_(theirs.q_proj_weight)
        ours.kv.weight.copy_(torch.cat([theirs.k_proj_weight, theirs.v_proj_weight]))
        ours.q.bias.copy_(theirs.in_proj_bias[:32])
        ours.kv.bias.copy_(theirs.in_proj_bias[32:])
        ours.proj.load_state_dict(theirs.out_proj.state_dict())
        q, memory = torch.randn(2, 7, 32), torch.randn(2, 5, 16)
        expected = theirs(q, memory, memory, need_weights=False)[0]
        torch.testing.assert_close(net([q, memory]), expected, rtol=1e-5, atol=1e-6)


def test_transformer_block_is_torchvisions_encoder_block() -> None:
    torch.manual_seed(0)
    theirs = EncoderBlock(4, 32, 64, dropout=0.0, attention_dropout=0.0, norm_layer=lambda c: nn.LayerNorm(c, eps=1e-6))
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.normal_(0, 0.2)
    theirs.eval()
    net = _tokens_net(((32, nv.tokens(1)), nv.TransformerBlock(4, 64)))
    state = {
        pair.neurlink[2:]: theirs.state_dict()[pair.reference] for pair in transformer_block_pairs(net[1], "1.", "")
    }
    net[1].load_state_dict(state)
    x = torch.randn(2, 10, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), theirs(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_norms_act_on_the_channels_of_every_layout() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d(3)),
            ((8, 2), nv.LayerNorm(1e-6)),
            ((8, nv.tokens(2)), nv.ToTokens()),
            ((8, nv.tokens(2)), nv.RMSNorm()),
            ((8, 2), nv.ToMap()),
        ]
    ).eval()
    with torch.no_grad():
        for norm in (net[2].norm, net[4].norm):
            norm.weight.normal_()
        x = torch.randn(2, 3, 9, 7)
        conv = net[1](x)
        normed = nn.functional.layer_norm(conv.movedim(1, -1), (8,), net[2].norm.weight, net[2].norm.bias, 1e-6)
        expected = nn.functional.rms_norm(normed.flatten(1, 2), (8,), net[4].norm.weight)
        torch.testing.assert_close(net(x), expected.transpose(1, 2).reshape(2, 8, 5, 4))


def test_tokens_fold_back_onto_their_grid_and_pool_without_their_extra_ones() -> None:
    net = nv.build(
        [
            ((4, 1), nv.Input()),
            ((4, nv.tokens(1)), nv.ToTokens()),
            ((4, nv.tokens(1, extra=2)), nv.ClassToken(2)),
            ((4, 1), nv.ToMap()),
        ],
        outputs=[1, 2, 3],
    )
    x = torch.randn(2, 4, 3, 5)
    tokens, with_extra, again = net(x)
    assert torch.equal(tokens, x.flatten(2).transpose(1, 2)) and torch.equal(again, x)
    assert with_extra.shape == (2, 17, 4) and torch.equal(with_extra[:, 2:], tokens)
    mean = nv.build(
        [
            ((4, 1), nv.Input()),
            ((4, nv.tokens(1)), nv.ToTokens()),
            ((4, nv.tokens(1, extra=2)), nv.ClassToken(2)),
            ((4, "()"), nv.ToVector("mean")),
        ]
    )
    torch.testing.assert_close(mean(x), x.mean((2, 3)))


def test_sincos_positions_are_fixed_sines_and_cosines_of_the_grid() -> None:
    net = _tokens_net(((8, nv.tokens(1)), nv.SinCosPositionEmbedding()), channels=8)
    zeros = torch.zeros(1, 6, 8)
    embedding = net(zeros)[0]
    omega = 10000 ** -(torch.arange(4) / 4)
    position = torch.arange(6.0)[:, None] * omega
    torch.testing.assert_close(embedding, torch.cat([position.sin(), position.cos()], 1))
    assert not list(net.parameters())


def test_learned_positions_resample_off_their_grid_and_stay_exact_on_it() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [*STEM, ((32, nv.tokens(4, extra=1)), nv.ClassToken()), ((32, nv.tokens(4, extra=1)), nv.PositionEmbedding(16))]
    )
    weight = net[4].embedding.weight
    assert weight.shape == (1, 1 + 4 * 4, 32)
    x = torch.randn(1, 3, 16, 16)
    tokens = net(x, outputs=[3])[0]
    torch.testing.assert_close(net(x), tokens + weight, rtol=0, atol=0)
    y = net(torch.randn(1, 3, 24, 40))  # a 6 x 10 grid
    assert y.shape == (1, 61, 32)


# --- the tools --------------------------------------------------------------------------------------


def _hybrid() -> nv.Network:
    """A ResNet-like stem at ratio 16, transformer blocks on its grid, folded back for a segmentation head."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((32, 4), nv.Conv2d_BN_ReLU(7)),
            ((64, 16), nv.Conv2d_BN_ReLU(3)),
            ((64, nv.tokens(16)), nv.ToTokens()),
            ((64, nv.tokens(16)), nv.SinCosPositionEmbedding()),
            [((64, nv.tokens(16)), nv.TransformerBlock(4, 128, layer_scale=0.1))] * 2,
            ((64, nv.tokens(16)), nv.LayerNorm()),
            ((64, 16), nv.ToMap()),
            ((5, 16), nv.Conv2d(1)),
            ((5, 1), nv.Interpolate("bilinear")),
        ]
    )


def test_flat_forward_fx_and_export_compute_the_lines() -> None:
    torch.manual_seed(0)
    net = _hybrid().eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        first = net(x)
        assert first.shape == (2, 5, 64, 96)
        torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
        torch.testing.assert_close(fx.symbolic_trace(net)(x), first, rtol=1e-6, atol=1e-6)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), first, rtol=1e-5, atol=1e-5)


def test_summary_shows_token_lines_as_declared_and_as_produced() -> None:
    text = str(neurlink.summary(_hybrid(), (1, 3, 64, 64)))
    assert "(64, tokens(16))" in text and "(1, 16, 64)" in text
    assert "MISMATCH" not in text


def test_a_network_of_tokens_round_trips_through_save_pretrained(tmp_path) -> None:
    torch.manual_seed(0)
    net = _hybrid().eval()
    net.save_pretrained(tmp_path)
    assert "tokens(16)" in (tmp_path / "config.json").read_text()
    again = neurlink.from_pretrained(tmp_path).eval()
    x = torch.randn(1, 3, 48, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)


def test_a_text_classifier_takes_any_length_and_ignores_padding() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((1, nv.tokens(1)), nv.Input["ids"](dtype=torch.long)),
            ((1, nv.tokens(1)), nv.Input["mask"](dtype=torch.bool)),
            ((32, nv.tokens(1)), nv.Embedding["ids"](100, padding_idx=0)),
            ((32, nv.tokens(1)), nv.SinCosPositionEmbedding()),
            [((32, nv.tokens(1)), nv.TransformerBlock[[-1, "mask"]](4, 64))] * 2,
            ((32, "()"), nv.ToVector[[-1, "mask"]]("mean")),
            ((3, "()"), nv.Linear()),
        ]
    ).eval()
    ids = torch.randint(1, 100, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    mask = padded == 0
    with torch.no_grad():
        short = net({"ids": ids, "mask": torch.zeros(1, 5, dtype=torch.bool)})
        torch.testing.assert_close(net({"ids": padded, "mask": mask}), short, rtol=1e-5, atol=1e-6)
        for length in (3, 17, 40):
            assert net([torch.randint(1, 100, (2, length)), torch.zeros(2, length, dtype=torch.bool)]).shape == (2, 3)
    assert math.isfinite(neurlink.summary(net, inputs=[padded, mask]).total_macs)


# --- what a new user ran into ---------------------------------------------------------------------


def test_causal_attention_with_a_padding_mask_joins_both_masks() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((32, nv.tokens(1)), nv.Input["x"]()),
            ((1, nv.tokens(1)), nv.Input["mask"](dtype=torch.bool)),
            ((32, nv.tokens(1)), nv.SelfAttention[["x", "mask"]](4, causal=True)),
        ]
    ).eval()
    theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    net[2].qkv.weight.data.copy_(theirs.in_proj_weight)
    net[2].qkv.bias.data.copy_(theirs.in_proj_bias)
    net[2].proj.load_state_dict(theirs.out_proj.state_dict())
    x, mask = torch.randn(2, 6, 32), torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    with torch.no_grad():
        expected = theirs(x, x, x, attn_mask=causal, key_padding_mask=mask, need_weights=False)[0]
        torch.testing.assert_close(net({"x": x, "mask": mask}), expected, rtol=1e-5, atol=1e-6)


def test_inputs_of_other_batch_sizes_are_refused_but_one_is_shared() -> None:
    net = nv.build(
        [
            ((1, nv.tokens(1)), nv.Input["ids"](dtype=torch.long)),
            ((1, nv.tokens(1)), nv.Input["mask"](dtype=torch.bool)),
            ((8, nv.tokens(1)), nv.Embedding["ids"](10)),
            ((8, nv.tokens(1)), nv.TransformerBlock[[-1, "mask"]](2, 16)),
        ]
    )
    ids = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(InputError, match="line 1 .*batch size 3, but the base Input's is 2"):
        net({"ids": ids, "mask": torch.zeros(3, 5, dtype=torch.bool)})
    assert net({"ids": ids, "mask": torch.zeros(1, 5, dtype=torch.bool)}).shape == (2, 5, 8)  # one mask for all
    with pytest.raises(DimsError, match="reads the tokens first and their padding mask last"):
        nv.build([*_ids_and_mask(), ((8, nv.tokens(1)), nv.TransformerBlock[["mask", -1]](2, 16))])


def _ids_and_mask():
    return [
        ((1, nv.tokens(1)), nv.Input["ids"](dtype=torch.long)),
        ((1, nv.tokens(1)), nv.Input["mask"](dtype=torch.bool)),
        ((8, nv.tokens(1)), nv.Embedding["ids"](10)),
    ]


def test_learned_positions_of_a_sequence_are_its_first_ones_and_refuse_longer_sequences() -> None:
    net = nv.build([*_ids_and_mask()[::2], ((8, nv.tokens(1)), nv.PositionEmbedding(64))])
    weight = net[2].embedding.weight
    ids = torch.zeros(1, 5, dtype=torch.long)
    torch.testing.assert_close(net(ids), net[1](ids) + weight[:, :5], rtol=0, atol=0)
    with pytest.raises(InputError, match="a sequence of 65 tokens, but the learned positions are for at most 64"):
        net(torch.zeros(1, 65, dtype=torch.long))


def test_one_token_of_a_grid_must_be_an_extra_one() -> None:
    assert "has no extra token" in _fails([*STEM, ((32, "()"), nv.ToVector(0))], NerveArgumentError)
    text = _fails(
        [*STEM, ((32, nv.tokens(4, extra=1)), nv.ClassToken()), ((32, "()"), nv.ToVector(3))], NerveArgumentError
    )
    assert "its 1 extra token(s), 0..0" in text and "ToVector('mean')" in text
    fixed = nv.build([((8, nv.tokens(length=4)), nv.Input()), ((8, "()"), nv.ToVector(-1))])
    assert fixed(torch.randn(1, 4, 8)).shape == (1, 8)


def test_more_mistakes_name_what_to_write() -> None:
    assert "allowed: (32, 4);" in _fails([*STEM, ((32, 8), nv.ToMap())])  # the ratio as written, not a Fraction
    assert "merges the tokens of line 2's grid" in _fails([*STEM, ((64, nv.tokens(4)), nv.PatchMerging())])
    assert "acts on the last dim" in _fails([*STEM[:2], ((32, 4), nn.LayerNorm(8))])  # the map's width
    whole = nv.build([((4, "(7, 7)"), nv.Input()), ((4, "(7, 7)"), nn.LayerNorm([4, 7, 7]))])  # the whole map
    assert whole(torch.randn(2, 4, 7, 7)).shape == (2, 4, 7, 7)
    assert "nv.tokens(ratio, extra=k)" in str(pytest.raises(DimsError, ShapeSpec, "token(4)").value)
    no_dtype = nv.build([((1, nv.tokens(1)), nv.Input()), ((1, nv.tokens(1)), nv.LayerNorm())])
    with pytest.raises(InputError, match=r"declare the Input's dtype, nv.Input\(dtype=torch.long\)"):
        no_dtype(torch.zeros(2, 5))


def test_summary_takes_a_dict_of_inputs_as_the_network_does() -> None:
    net = nv.build([*_ids_and_mask(), ((8, nv.tokens(1)), nv.TransformerBlock[[-1, "mask"]](2, 16))])
    ids, mask = torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 5, dtype=torch.bool)
    by_tag = neurlink.summary(net, inputs={"mask": mask, "ids": ids})
    assert by_tag.total_macs == neurlink.summary(net, inputs=[ids, mask]).total_macs > 0


# --- what a reviewer did to built networks --------------------------------------------------------


def _small_vit() -> nv.Network:
    d = (32, nv.tokens(8, extra=1))
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((32, 8), nv.Conv2d(8)),
            ((32, nv.tokens(8)), nv.ToTokens()),
            (d, nv.ClassToken()),
            (d, nv.PositionEmbedding(32)),
            [(d, nv.TransformerBlock(2, 64))] * 2,
            (d, nv.LayerNorm()),
            ((32, "()"), nv.ToVector(0)),
            ((10, "()"), nv.Linear()),
        ]
    )


def test_half_precision_resamples_positions_in_float32() -> None:
    torch.manual_seed(0)
    net = _small_vit().eval()
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        expected = net(x)
        half = net.to(torch.bfloat16)(x.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), expected, rtol=0.05, atol=0.05)


def test_dynamic_shapes_refuse_what_symbolic_sizes_cannot_follow() -> None:
    with pytest.raises(InputError, match=r"line 4 \(PositionEmbedding\) adds its positions unchanged") as caught:
        _small_vit().dynamic_shapes()
    assert "torch.export.export(net, (x,)) at the size it will run at" in str(caught.value)
    swin = nv.build([*STEM, ((32, nv.tokens(4)), nv.SwinBlock(2, window=4))])
    with pytest.raises(InputError, match=r"line 3 > line 2 \(WindowAttention\) pads its grid to whole windows"):
        swin.dynamic_shapes()
    text = nv.build([*_ids_and_mask()[::2], ((8, nv.tokens(1)), nv.PositionEmbedding(64))])
    (spec,) = text.dynamic_shapes()  # a sequence's positions are sliced: any length exports
    exported = torch.export.export(text, (torch.zeros(2, 6, dtype=torch.long),), dynamic_shapes=(spec,))
    ids = torch.randint(0, 10, (2, 9))
    torch.testing.assert_close(exported.module()(ids), text(ids))


def test_a_swin_blocks_shift_has_one_owner() -> None:
    torch.manual_seed(0)
    net = nv.build([*STEM, ((32, nv.tokens(4)), nv.SwinBlock(2, window=4, shift=2))]).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        net(x)
        shifted = net(x)
        net[3]["attn"].shift = (0, 0)
        unshifted = net(x)
        assert not torch.equal(shifted, unshifted)
        torch.testing.assert_close(unshifted, line_by_line(net, x), rtol=0, atol=0)
    assert not hasattr(net[3]["attn"].attend, "shift")


@pytest.mark.slow
def test_compile_runs_a_vit_at_new_sizes() -> None:
    torch.manual_seed(0)
    net = _small_vit().eval()
    compiled = torch.compile(net)
    with torch.no_grad():
        for size in ((32, 32), (40, 48), (48, 64)):
            x = torch.randn(1, 3, *size)
            torch.testing.assert_close(compiled(x), net(x), rtol=1e-5, atol=1e-5)
