"""Definitions as files people write: YAML or JSON whose lines are the grammar's, read without running anything.

A file holds a definition's lines, one per line of the file, written as in Python without the
outer parentheses and the ``nv.`` prefix, with parameters it declares:

>>> import tempfile, torch, neurlink
>>> from pathlib import Path
>>> text = '''
... params:
...   classes: 10
... lines:
...   - (3, 1), Input()
...   - (16, 2), Conv2d_BN_ReLU[-1, "stem"](3, act=SiLU)
...   - (32, 4), Conv2d_BN_ReLU(3) * 2
...   - (32, "(1, 1)"), AvgPool2d()
...   - (classes, "()"), Linear()
... '''
>>> with tempfile.TemporaryDirectory() as folder:
...     path = Path(folder, "net.yaml")
...     _ = path.write_text(text)
...     net = neurlink.from_file(path, classes=5)
...     net.to_file(Path(folder, "again.json"))
...     again = neurlink.from_file(Path(folder, "again.json"))  # its lines, with classes=5 written out
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 5])
>>> [entry.written for entry in again.lines] == [entry.written for entry in net.lines]
True

Every mistake names the file, its line and column, and shows the line as written:

>>> neurlink.definition_files.from_text("lines:\\n  - (3, 1), Input()\\n  - (8, 2), Conv2d_BN_Relu(3)\\n", file="net.yaml")
Traceback (most recent call last):
...
neurlink.definition_files.errors.DefinitionFileError: net.yaml:3:13: line 1: (8, 2), Conv2d_BN_Relu(3)
                               ^
    unknown name 'Conv2d_BN_Relu'; did you mean 'Conv2d_BN_ReLU' or 'Conv3d_BN_ReLU' or 'Conv1d_BN_ReLU'?
    allowed: a nerve (Conv2d_BN_ReLU, Bottleneck), a torch.nn class (SiLU, BatchNorm2d), a parameter the file declares, or an import path (my_nerves.Residual, read with from_file(path, trusted=['my_nerves']))

See ``docs/definition-files.md`` for the notation: names, parameters, scales and what is refused.
"""

from .. import definition_hooks
from . import checkpoints
from .errors import DefinitionFileError as DefinitionFileError
from .errors import DefinitionFileNotFoundError as DefinitionFileNotFoundError
from .errors import placed
from .reading import from_file as from_file
from .reading import from_text as from_text
from .writing import to_file as to_file
from .writing import to_text as to_text

# what the core asks of this package, which it does not import: Network.to_file, call errors placed at the
# file's line, a checkpoint that keeps its network's file
definition_hooks.HOOKS = definition_hooks.DefinitionFileHooks(
    write=to_file,
    place=placed,
    keeps=checkpoints.keeps,
    text_of=checkpoints.text_of,
    build=checkpoints.build,
    check=checkpoints.check,
)

__all__ = ["from_file", "from_text", "to_file", "to_text", "DefinitionFileError", "DefinitionFileNotFoundError"]
