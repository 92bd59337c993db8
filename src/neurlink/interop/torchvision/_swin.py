"""torchvision's SwinTransformer (v1 and v2): the mapping of its keys, derived by walking the lines.

The conv line and the norm before the first block are ``features.0.0`` and ``features.0.2``; the blocks
of stage ``s`` (counted from 0, a stage ending at each ``PatchMerging`` line) are ``features.{2s + 1}.{k}``,
their sub-lines by tag (``norm1``, ``attn``, ``norm2``, ``mlp``: the MLP's ``fc1``/``fc2`` are ``mlp.0``/
``mlp.3``; the attention's ``qkv`` and ``proj`` keep their names, and the tensors of its ``attend`` sit on
``attn`` itself); the patch merging after stage ``s`` is ``features.{2s + 2}`` (``reduction``, ``norm``);
the norm after the last block is ``norm`` and the last line's Linear is ``head``. Buffers
(``relative_position_index``, ``relative_coords_table``) are mapped as the parameters are.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...nerves import ConvNd, LayerNorm, Linear, PatchMerging, SwinBlock
from .._state_dict import Pair, check_complete, child_pairs, has_state

__all__ = ["is_swin", "swin_pairs"]

_PARTS = ("norm1", "attn", "norm2", "mlp")  # a SwinTransformerBlock's children, in torchvision's order
_MLP = {"fc1": "0", "fc2": "3"}  # torchvision's MLP: Linear, GELU, Dropout, Linear, Dropout


def is_swin(model: nn.Module) -> bool:
    """A network of Swin blocks (torchvision's SwinTransformer)."""
    return any(isinstance(m, SwinBlock) for m in model.children())


def _attention_order(key: str) -> int:
    # torchvision's ShiftedWindowAttention holds its own tensors first, then qkv, proj and (v2) cpb_mlp
    owner, _, rest = key.partition(".")
    if owner == "attend":
        return 0 if "." not in rest else 3
    return 1 if owner == "qkv" else 2


def swin_block_pairs(block: SwinBlock, prefix: str, target: str) -> Iterator[Pair]:
    """A :class:`~neurlink.nerves.SwinBlock` as torchvision's ``SwinTransformerBlock`` (or V2) under ``target``."""
    tags = block.line_tags()
    for tag, index in tags.items():
        if tag not in _PARTS and has_state(block[index]):
            raise StateDictError(
                f"line {prefix}{index} ({type(block[index]).__name__}, tagged {tag!r}) has weights, but torchvision's"
                " SwinTransformerBlock has only norm1, attn, norm2 and mlp"
            )
    for tag in _PARTS:
        if tag not in tags:
            continue
        module, name = block[tags[tag]], f"{prefix}{tags[tag]}."
        keys = list(module.state_dict())
        if tag == "attn":
            keys.sort(key=_attention_order)  # stable: each module's own order kept
        for key in keys:
            owner, _, rest = key.partition(".")
            if tag in ("norm1", "norm2"):  # LayerNorm's own nn.LayerNorm is its child "norm"
                yield Pair(name + key, f"{target}{tag}.{rest}")
            elif tag == "attn":
                yield Pair(name + key, f"{target}attn.{rest if owner == 'attend' else key}")
            else:
                yield Pair(name + key, f"{target}mlp.{_MLP.get(owner, owner)}.{rest}")


def swin_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    stage, block, blocks = 0, 0, 0
    for name, module in model.named_children():
        if not has_state(module):
            continue
        where = f"line {name} ({type(module).__name__})"
        prefix = f"{name}."
        if isinstance(module, SwinBlock):
            pairs.extend(swin_block_pairs(module, prefix, f"features.{2 * stage + 1}.{block}."))
            block += 1
            blocks += 1
        elif isinstance(module, PatchMerging) and blocks:
            pairs.extend(Pair(prefix + key, f"features.{2 * stage + 2}.{key}") for key in module.state_dict())
            stage, block = stage + 1, 0
        elif isinstance(module, ConvNd) and not pairs:
            if module._modules.get("norm") is not None:
                raise StateDictError(f"{where} has a norm, but torchvision's features.0.0 is a conv alone")
            pairs.extend(child_pairs(module, prefix, "features.0.0"))
        elif isinstance(module, LayerNorm) and not blocks and pairs:
            pairs.extend(child_pairs(module, prefix, "features.0.2"))
        elif isinstance(module, LayerNorm) and blocks:
            pairs.extend(child_pairs(module, prefix, "norm"))
        elif isinstance(module, Linear) and blocks:
            pairs.extend(child_pairs(module, prefix, "head"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's SwinTransformer has only the patchify conv and its norm,"
                " the stages' blocks and patch mergings, its norm and the head here"
            )
    check_complete(model, pairs, "torchvision", "SwinTransformer")
    return pairs
