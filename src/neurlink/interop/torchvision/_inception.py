"""torchvision's GoogLeNet and Inception-v3: the mapping of their keys, derived by walking the lines.

**GoogLeNet.** The conv lines before the first ``Inception`` line are ``conv1``, ``conv2``, ``conv3``
(each ``.conv`` and ``.bn``); the blocks are ``inception3a``, ``inception3b``, then, after each max
pool line, the next stage from ``a``: ``inception4a`` ... ``inception4e``, ``inception5a``,
``inception5b``. Inside a block, a conv sub-line tagged with torchvision's name (``branch2.1``) is that
``BasicConv2d`` (``branch2.1.conv``, ``branch2.1.bn``). The ``Linear`` line after the blocks is ``fc``;
the ``GoogLeNetAux`` lines are ``aux1`` and ``aux2``, in the order of the blocks they read (their
sub-lines ``conv``, ``fc1`` and ``fc2``).

**Inception-v3.** The conv lines before the first block are, in order, ``Conv2d_1a_3x3``,
``Conv2d_2a_3x3``, ``Conv2d_2b_3x3``, ``Conv2d_3b_1x1`` and ``Conv2d_4a_3x3``; the blocks are
``Mixed_5b``, ``Mixed_5c``, ..., a block that reduces the shape (``InceptionB``, ``InceptionD``) starting
the next stage at ``a``: ``Mixed_6a`` ... ``Mixed_6e``, ``Mixed_7a`` ... ``Mixed_7c``. Sub-lines are
named by their tags as in GoogLeNet; the ``InceptionAux`` line is ``AuxLogits`` (``conv0``, ``conv1``,
``fc``) and the ``Linear`` line after the blocks ``fc``.

The pairs come in torchvision's order: GoogLeNet's auxiliary heads after the blocks, Inception-v3's right
after the block it reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...models.googlenet import GoogLeNetAux, Inception
from ...models.inception import InceptionA, InceptionAux, InceptionB, InceptionC, InceptionD, InceptionE
from ...nerve import Nerve
from ...nerves import ConvNd, Linear
from ...nerves.pool import PoolNd
from .._state_dict import Pair, check_complete, child_pairs, conv_pairs, has_state

__all__ = ["is_googlenet", "is_inception_v3", "googlenet_pairs", "inception_v3_pairs"]

_V3_BLOCKS = (InceptionA, InceptionB, InceptionC, InceptionD, InceptionE)
_V3_REDUCING = (InceptionB, InceptionD)  # each starts a stage: Mixed_6a, Mixed_7a
_V3_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")


def is_googlenet(model: nn.Module) -> bool:
    """A network of GoogLeNet's Inception blocks (torchvision's GoogLeNet)."""
    return any(isinstance(module, Inception) for module in model.children())


def is_inception_v3(model: nn.Module) -> bool:
    """A network of Inception-v3's blocks (torchvision's Inception3)."""
    return any(isinstance(module, _V3_BLOCKS) for module in model.children())


def googlenet_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    stem = [f"conv{k}" for k in range(1, 4)]
    by_line: dict[int, list[Pair]] = {}  # the pairs of each line, by its index
    heads: list[tuple[int, Nerve, str]] = []  # (line read, nerve, line name)
    head: list[Pair] = []
    stage, letter, blocks = 3, 0, False
    for name, module in model.named_children():
        index = int(name)  # the line number (an Input line has no module)
        where = f"line {name} ({type(module).__name__})"
        if isinstance(module, Inception):
            target = f"inception{stage}{'abcdefgh'[letter]}"
            letter, blocks = letter + 1, True
            by_line[index] = list(_tagged(module, f"{name}.", f"{target}."))
        elif isinstance(module, PoolNd):
            if blocks and letter:
                stage, letter = stage + 1, 0
        elif isinstance(module, GoogLeNetAux):
            heads.append((module.input_links[0].index, module, name))
        elif not has_state(module):
            continue
        elif isinstance(module, ConvNd) and not blocks and stem:
            target = stem.pop(0)
            by_line[index] = list(conv_pairs(module, f"{name}.", f"{target}.conv", f"{target}.bn"))
        elif isinstance(module, Linear) and blocks and not head:
            head = list(child_pairs(module, f"{name}.", "fc"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's GoogLeNet has three stem convs, Inception blocks, two"
                " auxiliary heads and an fc after the pooling"
            )
    pairs = [pair for index in sorted(by_line) for pair in by_line[index]]
    for number, (_, module, name) in enumerate(sorted(heads, key=lambda item: item[0]), start=1):
        pairs.extend(_tagged(module, f"{name}.", f"aux{number}."))  # torchvision's aux1 and aux2 follow the blocks
    pairs += head
    check_complete(model, pairs, "torchvision", "GoogLeNet")
    return pairs


def inception_v3_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    stem = list(_V3_STEM)
    by_line: dict[int, list[Pair]] = {}
    heads: list[tuple[int, Nerve, str]] = []
    head: list[Pair] = []
    stage, letter, blocks = 5, 1, False  # the first block is Mixed_5b
    for name, module in model.named_children():
        index = int(name)  # the line number (an Input line has no module)
        where = f"line {name} ({type(module).__name__})"
        if isinstance(module, _V3_BLOCKS):
            if isinstance(module, _V3_REDUCING) and blocks:
                stage, letter = stage + 1, 0
            target = f"Mixed_{stage}{'abcdefgh'[letter]}"
            letter, blocks = letter + 1, True
            by_line[index] = list(_tagged(module, f"{name}.", f"{target}."))
        elif isinstance(module, InceptionAux):
            heads.append((module.input_links[0].index, module, name))
        elif not has_state(module):
            continue
        elif isinstance(module, ConvNd) and not blocks and stem:
            target = stem.pop(0)
            by_line[index] = list(conv_pairs(module, f"{name}.", f"{target}.conv", f"{target}.bn"))
        elif isinstance(module, Linear) and blocks and not head:
            head = list(child_pairs(module, f"{name}.", "fc"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's Inception3 has five stem convs, its Mixed blocks, an"
                " auxiliary head and an fc after the pooling"
            )
    if len(heads) > 1:
        raise StateDictError(f"lines {', '.join(name for *_, name in heads)} are auxiliary heads; Inception3 has one")
    for read, module, name in heads:
        by_line.setdefault(read, []).extend(_tagged(module, f"{name}.", "AuxLogits."))
    pairs = [pair for index in sorted(by_line) for pair in by_line[index]] + head
    check_complete(model, pairs, "torchvision", "Inception3")
    return pairs


def _tagged(nerve: Nerve, prefix: str, target: str) -> Iterator[Pair]:
    """A block's or head's tagged sub-lines under their tags: a conv line is torchvision's BasicConv2d
    (``{tag}.conv``, ``{tag}.bn``), a Linear line its Linear. Anything else with weights stays unmapped,
    for check_complete to name."""
    for tag, index in nerve.line_tags().items():
        module = nerve[index]
        if isinstance(module, ConvNd):
            yield from conv_pairs(module, f"{prefix}{index}.", f"{target}{tag}.conv", f"{target}{tag}.bn")
        elif isinstance(module, Linear):
            yield from child_pairs(module, f"{prefix}{index}.", f"{target}{tag}")
