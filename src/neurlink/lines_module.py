"""What the top-level network and every nerve share: a line table, a watched tree, ``repr``."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from . import tree_watch
from .errors import LineIndexError, LineTypeError
from .table import LineTable

__all__ = ["LinesModule"]


class LinesModule(nn.Module):
    """An ``nn.Module`` that may own a :class:`LineTable` and tells ``tree_watch`` of every change.

    Its children live in a :class:`~neurlink.tree_watch.ChildModules` dict, and setting an
    attribute or registering a hook bumps the tree epoch, so that a network's flat forward is
    checked against the tree after any change (``forward_graph.FlatForward``).
    """

    _table: LineTable | None

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_modules", tree_watch.ChildModules())
        for name in tree_watch.HOOK_DICTS:
            object.__setattr__(self, name, tree_watch.HookDict())

    def __setattr__(self, name: str, value) -> None:
        if name == "_modules" and type(value) is dict:  # e.g. replaced wholesale by a library
            value = tree_watch.ChildModules(value)
        super().__setattr__(name, value)
        tree_watch.bump()

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        tree_watch.bump()

    # A network, and a nerve made of sub-lines, is a sequence of its lines as a Sequential is of its modules.
    def __getitem__(self, line: int | str) -> nn.Module:
        """The module of a line, by index (negative from the end) or tag: ``net[-1]``, ``net["layer4"]``;
        on a nerve, of its sub-lines: ``block["branches.0.1"]``."""
        table = self._lines_table()
        entry = table.entries[table.index_of(line)]
        if entry.name is None:
            what = "an Input line" if self.__dict__.get("input_links") is None else "one of the nerve's inputs"
            raise LineIndexError(f"line {entry.index} is {what} {entry.written}: it has no module")
        return self.get_submodule(entry.name)

    def __setitem__(self, line: int | str, module: nn.Module) -> None:
        """Replace the module of a line, as a Sequential's: ``net[-1] = nn.Identity()``, ``net["head"] = ...``
        (the same as setting the child by its name; the forward runs the new module)."""
        table = self._lines_table()
        entry = table.entries[table.index_of(line)]
        if entry.name is None:
            what = "an Input line" if self.__dict__.get("input_links") is None else "one of the nerve's inputs"
            raise LineIndexError(f"line {entry.index} is {what} {entry.written}: it has no module to replace")
        if not isinstance(module, nn.Module):
            raise LineTypeError(
                f"line {entry.index} {entry.written} holds a module; {type(module).__name__} is not an nn.Module",
                allowed="net[line] = an nn.Module",
            )
        setattr(self, entry.name, module)

    def __len__(self) -> int:
        """The number of lines, Input lines (a nerve's inputs) included."""
        return len(self._lines_table().entries)

    def __iter__(self) -> Iterator[nn.Module]:
        """The modules of the lines, in order (Input lines have none), as a Sequential's."""
        table = self._lines_table()
        return (self.get_submodule(entry.name) for entry in table.entries if entry.name is not None)

    def __contains__(self, item: object) -> bool:
        """A tag of a line, or the module of one."""
        table = self._lines_table()
        if isinstance(item, str):
            return item in table.tags
        return any(module is item for module in self)

    def __bool__(self) -> bool:  # a module is true, whatever its length (a nerve without lines has none)
        return True

    def _lines_table(self) -> LineTable:
        if self._table is None:
            raise LineTypeError(f"{type(self).__name__} has no lines of its own (it makes its modules itself)")
        return self._table

    def line_tags(self) -> dict[str, int]:
        """The tag of every tagged line (a nerve's sub-lines), with its index, in line order.

        How a nerve names the parts it is made of: the zoo's nerves tag the sub-lines that hold a
        reference model's parts (an HR module's ``branches.1.3``, a U-Net decoder block's ``conv2``),
        and the weight mappings (``neurlink.interop``) read the parts from the tags.
        """
        return {} if self._table is None else dict(self._table.tags)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_flat", None)  # a generated forward (a hooked nerve's own): written again on its next call
        return state

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        if type(self._modules) is not tree_watch.ChildModules:  # pickled by an older neurlink
            object.__setattr__(self, "_modules", tree_watch.ChildModules(self._modules))
        for name in tree_watch.HOOK_DICTS:
            if type(self.__dict__[name]) is not tree_watch.HookDict:
                object.__setattr__(self, name, tree_watch.HookDict(self.__dict__[name]))
        tree_watch.bump()

    # A hook on a nerve asks for the nerve to be called, which the flat forward skips.
    def register_forward_pre_hook(self, *args, **kwargs):
        handle = super().register_forward_pre_hook(*args, **kwargs)
        tree_watch.bump()
        return handle

    def register_forward_hook(self, *args, **kwargs):
        handle = super().register_forward_hook(*args, **kwargs)
        tree_watch.bump()
        return handle

    def register_full_backward_pre_hook(self, *args, **kwargs):
        handle = super().register_full_backward_pre_hook(*args, **kwargs)
        tree_watch.bump()
        return handle

    def register_full_backward_hook(self, *args, **kwargs):
        handle = super().register_full_backward_hook(*args, **kwargs)
        tree_watch.bump()
        return handle

    def register_backward_hook(self, *args, **kwargs):
        handle = super().register_backward_hook(*args, **kwargs)
        tree_watch.bump()
        return handle

    def _line_texts(self, indent: str = "  ") -> list[str]:
        rows: list[str] = []
        for entry in self._table.entries if self._table is not None else ():
            rows.append(f"{indent}({entry.index}): {entry.written}")
            child = self._modules.get(entry.name) if entry.name else None
            if isinstance(child, LinesModule) and child._table is not None:
                rows.extend(child._line_texts(indent + "    "))
        return rows

    def __repr__(self) -> str:
        if self._table is None:
            return super().__repr__()
        return f"{type(self).__name__}(\n" + "\n".join(self._line_texts()) + "\n)"
