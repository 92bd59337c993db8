"""torchvision's VisionTransformer: the mapping of its keys, derived by walking the lines.

The conv line before the first token line is ``conv_proj``; a ``ClassToken`` line is ``class_token``
and a ``PositionEmbedding`` line ``encoder.pos_embedding``; the transformer blocks, in order, are
``encoder.layers.encoder_layer_{i}`` (their sub-lines by tag: ``norm1`` is ``ln_1``, ``attn`` is
``self_attention``, whose packed ``qkv`` is ``in_proj_weight``/``in_proj_bias`` and ``proj`` is
``out_proj``, ``norm2`` is ``ln_2``, the MLP's ``fc1``/``fc2`` are ``mlp.0``/``mlp.3``); the norm
after them is ``encoder.ln`` and the last line's Linear is ``heads.head``.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...nerves import ClassToken, ConvNd, LayerNorm, Linear, PositionEmbedding, TransformerBlock
from .._state_dict import Pair, check_complete, child_pairs, has_state

__all__ = ["is_vit", "vit_pairs", "transformer_block_pairs"]

# a block's parts (its sub-lines' tags) as torchvision's EncoderBlock names them
_BLOCK_PARTS = {"norm1": "ln_1", "attn": "self_attention", "norm2": "ln_2", "mlp": "mlp"}
_MLP = {"fc1": "0", "fc2": "3"}  # torchvision's MLP is a Sequential: Linear, act, Dropout, Linear, Dropout


def is_vit(model: nn.Module) -> bool:
    """A network of transformer blocks with a class token (torchvision's ViT)."""
    children = list(model.children())
    return any(isinstance(m, TransformerBlock) for m in children) and any(isinstance(m, ClassToken) for m in children)


def transformer_block_pairs(block: TransformerBlock, prefix: str, target: str) -> Iterator[Pair]:
    """A :class:`~neurlink.nerves.TransformerBlock` as torchvision's ``EncoderBlock`` under ``target``."""
    tags = block.line_tags()
    for tag, index in tags.items():
        module, name = block[index], f"{prefix}{index}."
        part = _BLOCK_PARTS.get(tag)
        if part is None:
            if has_state(module):
                raise StateDictError(
                    f"line {name[:-1]} ({type(module).__name__}, tagged {tag!r}) has weights, but torchvision's"
                    " EncoderBlock has only ln_1, self_attention, ln_2 and mlp (no layer scale)"
                )
            continue
        for key in module.state_dict():
            owner, _, rest = key.partition(".")
            if tag in ("norm1", "norm2"):  # LayerNorm's own nn.LayerNorm is its child "norm"
                yield Pair(name + key, f"{target}{part}.{rest}")
            elif tag == "attn":
                reference = f"in_proj_{rest}" if owner == "qkv" else f"out_proj.{rest}"
                yield Pair(name + key, f"{target}{part}.{reference}")
            else:
                yield Pair(name + key, f"{target}{part}.{_MLP.get(owner, owner)}.{rest}")


def vit_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    blocks = 0
    for name, module in model.named_children():
        if not has_state(module):
            continue
        where = f"line {name} ({type(module).__name__})"
        prefix = f"{name}."
        if isinstance(module, TransformerBlock):
            pairs.extend(transformer_block_pairs(module, prefix, f"encoder.layers.encoder_layer_{blocks}."))
            blocks += 1
        elif isinstance(module, ConvNd) and not blocks and not pairs:
            if module._modules.get("norm") is not None:
                raise StateDictError(f"{where} has a norm, but torchvision's conv_proj is a conv alone")
            pairs.extend(child_pairs(module, prefix, "conv_proj"))
        elif isinstance(module, ClassToken):
            pairs.append(Pair(prefix + "cls.token", "class_token"))
        elif isinstance(module, PositionEmbedding):
            pairs.append(Pair(prefix + "embedding.weight", "encoder.pos_embedding"))
        elif isinstance(module, LayerNorm) and blocks:
            pairs.extend(child_pairs(module, prefix, "encoder.ln"))
        elif isinstance(module, Linear) and blocks:
            pairs.extend(child_pairs(module, prefix, "heads.head"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's ViT has only conv_proj, class_token, pos_embedding, its"
                " encoder's blocks, its norm and the head here"
            )
    check_complete(model, pairs, "torchvision", "VisionTransformer")
    # torchvision registers class_token on the model itself, before its children's tensors
    return sorted(pairs, key=lambda pair: pair.reference != "class_token")
