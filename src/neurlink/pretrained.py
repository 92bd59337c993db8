"""Checkpoints that carry their network: ``net.save_pretrained(directory)`` and ``from_pretrained(directory)``.

A directory in Hugging Face's layout: ``config.json``, the definition as plain JSON (a zoo model's
builder name and keywords, or any network's lines, ``_config.py``; for a network read from a
definition file, the name and hash of that file, kept beside it as ``definition.yaml``), and
``model.safetensors``, the state_dict. No pickle anywhere, and nothing in the config is evaluated: reading it back imports
classes and functions only from neurlink, torch and the modules the caller lists in ``trusted``
(``_names.py``), after every name in the file has passed that rule.

>>> import tempfile, torch, neurlink
>>> from neurlink import nv
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, "(1, 1)"), nv.AvgPool2d())]).eval()
>>> with tempfile.TemporaryDirectory() as directory:
...     net.save_pretrained(directory)
...     again = neurlink.from_pretrained(directory)
>>> x = torch.randn(1, 3, 16, 16)
>>> torch.equal(again(x), net(x))
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast, overload

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import _files, _names, definition_hooks
from ._config import (
    _DTYPES,
    FORMAT,
    FORMAT_VERSION,
    MAX_DEFINITION_BYTES,
    READABLE_VERSIONS,
    NotData,
    Reader,
    encode_lines,
    encode_value,
)
from ._registry import create_model, list_models
from ._version import __version__
from .checkpoint import check_state_dict
from .definition_hooks import DefinitionFile
from .errors import CheckpointError, CheckpointNotFoundError, NeurlinkError, PretrainedError, a_kind
from .lines_module import LinesModule

if TYPE_CHECKING:
    from .network import Network

Device = torch.device | str | None

__all__ = ["save_pretrained", "from_pretrained", "CONFIG_NAME", "WEIGHTS_NAME", "DEFINITION_NAMES"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFINITION_NAMES = {"yaml": "definition.yaml", "json": "definition.json"}  # a network read from a file keeps it
_MAX_CONFIG_BYTES = 16 * 2**20  # a definition is kilobytes; one larger than this is not a definition
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_TOP_KEYS = {
    *("format", "format_version", "neurlink_version", "dtype", "model", "lines", "outputs", "attributes"),
    "weights_id",
    "definition_file",
}
_SCALARS = (type(None), bool, int, float, str)


# --- saving -------------------------------------------------------------------------------------


def save_pretrained(network: nn.Module, directory: str | os.PathLike) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``network`` into ``directory`` (made if needed);
    a network read from a definition file (``neurlink.from_file``) keeps it beside them, as
    ``definition.yaml`` or ``definition.json``, with the parameters it was built with as its defaults.

    Each file is replaced whole, and both carry the id of this save: a reader finds the old checkpoint,
    the new one, or (after an interrupted save) a pair it refuses, never a mixture that loads. The
    config records the definition file's hash, which pairs it with them.

    Raises :class:`~neurlink.errors.PretrainedError` before anything is written when a value of the
    definition cannot be written as data (naming the line and the value), or when the network no longer
    matches its definition (a module replaced after the build).
    """
    from safetensors.torch import save_file

    config, names, file = _config_of(network)
    tensors = _tensors_of(network)
    changed = _check_rebuilds(network, config, names, file)
    if changed:
        config["attributes"] = {
            path: {k: encode_value(v, names, k) for k, v in attrs.items()} for path, attrs in changed.items()
        }
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise PretrainedError(f"{folder}: exists and is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    names_written = (CONFIG_NAME, WEIGHTS_NAME) + ((config["definition_file"]["name"],) if file else ())
    for name in names_written:  # before any is written: a save replaces all or none
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            raise PretrainedError(f"{folder / name}: is a directory, where the save writes a file")
    # each file replaced whole (never written through a link); the id pairs them (``_files.py``)
    config["weights_id"] = weights_id = _files.new_weights_id()
    text = json.dumps(config, indent=1, allow_nan=False) + "\n"
    metadata = {"format": "pt", _files.WEIGHTS_ID_KEY: weights_id}
    _files.replace_atomically(folder / WEIGHTS_NAME, lambda path: save_file(tensors, str(path), metadata=metadata))
    if file is not None:
        written = file.text
        _files.replace_atomically(
            folder / config["definition_file"]["name"], lambda path: path.write_text(written, encoding="utf-8")
        )
    _files.replace_atomically(folder / CONFIG_NAME, lambda path: path.write_text(text, encoding="utf-8"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _config_of(network: nn.Module) -> tuple[dict, set[str], DefinitionFile | None]:
    """The config of ``network``: a zoo model's builder, the definition file it was read from (the
    config names it, and ``from_pretrained`` builds from it), or its lines."""
    config: dict = {"format": FORMAT, "format_version": FORMAT_VERSION, "neurlink_version": __version__}
    dtypes = {t.dtype for t in network.state_dict().values() if isinstance(t, torch.Tensor) and t.is_floating_point()}
    config["dtype"] = str(dtypes.pop()).removeprefix("torch.") if len(dtypes) == 1 else None
    names: set[str] = set()
    made_by = network.__dict__.get("_made_by")
    if made_by is not None and made_by[2].split(".")[0] == "neurlink":  # a zoo model: its builder and keywords
        name, keywords, _ = made_by
        try:
            config["model"] = {"name": name, "keywords": {k: encode_value(v, names, k) for k, v in keywords.items()}}
        except NotData as error:
            raise PretrainedError(
                f"{name}(...): the keyword {error.where}={_short(error.value)} cannot be written as data: {error.reason}"
            ) from None
        return config, names, None
    kept = definition_hooks.HOOKS.text_of(network) if definition_hooks.HOOKS is not None else None
    if kept is not None:  # its lines are the file's, which the checkpoint keeps as it is
        text, kind, trusted = kept
        config["definition_file"] = {"name": DEFINITION_NAMES[kind], "sha256": _sha256(text)}
        return config, names, DefinitionFile(text, kind, f"{DEFINITION_NAMES[kind]} (as saved)", trusted)
    definition = network.__dict__.get("_definition")
    if definition is None:
        raise PretrainedError(
            f"this {type(network).__name__} keeps no definition to write (it was copied by pickle while a line"
            " held a lambda or a local class, or it was not built by nv.build)",
            allowed=unwrapped_advice(network, "save_pretrained"),
        )
    lines, outputs = definition
    try:
        config["lines"] = encode_lines(lines, names)
        config["outputs"] = None if outputs is None else encode_value(outputs, names, "outputs")
    except NotData as error:
        raise not_data_error(network, error, PretrainedError, "written as data") from None
    return config, names, None


def unwrapped_advice(network: nn.Module, method: str) -> str | None:
    """For a wrapper of a network (DataParallel, DistributedDataParallel, torch.compile's module), how to
    reach the network inside it."""
    from .network import Network

    for attribute in ("module", "_orig_mod"):
        inner = getattr(network, attribute, None)
        if isinstance(inner, Network):
            return f"the network it wraps: {type(network).__name__}.{attribute}.{method}(...)"
    return None


def not_data_error(network: nn.Module, error: NotData, kind: type[NeurlinkError], as_what: str) -> NeurlinkError:
    """A value of the lines that ``encode_lines`` cannot write (``error``) as a ``kind`` error, at its line."""
    what = error.where if error.where.startswith("the ") else f"{error.where}={_short(error.value)}"
    problem = kind(
        f"{what} cannot be {as_what}: {error.reason}",
        allowed="literals, lists, tuples, dicts, dims, classes and functions of importable modules,"
        " functools.partial of them, nerve definitions, and torch modules made from their arguments",
    )
    table = network.__dict__.get("_table")
    if error.line is not None and table is not None and error.line < len(table.entries):
        entry = table.entries[error.line]
        problem.locate(entry.index, entry.tag, entry.written)
    return problem


def _short(value: Any) -> str:
    """A value as a message shows it: at most 80 characters on one line; an integer too long for Python to
    print (over 4300 digits) by its size."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"(an integer of {value.bit_length()} bits)"
    text = repr(value)
    if "\n" in text:
        text = f"{type(value).__name__}(...)" if isinstance(value, nn.Module) else " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _tensors_of(network: nn.Module) -> dict[str, torch.Tensor]:
    tensors, storages = {}, set()
    for key, value in network.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise PretrainedError(f"state_dict key {key!r} holds {a_kind(type(value).__name__)}, not a tensor")
        if value.is_meta:
            raise PretrainedError(f"state_dict key {key!r} is on the meta device: it has no values to save")
        value = value.detach().to("cpu").contiguous()
        storage = (value.untyped_storage().data_ptr(), value.untyped_storage().nbytes())
        if storage in storages and value.numel():
            value = value.clone()  # safetensors writes no shared memory (tied weights): one copy each
        storages.add(storage)
        tensors[key] = value
    return tensors


def _check_rebuilds(
    network: nn.Module, config: dict, names: set[str], file: DefinitionFile | None
) -> dict[str, dict[str, Any]]:
    """The definition (the config's, or the definition ``file`` kept beside it), read back as
    from_pretrained would, must make this network's modules and tensors.

    Returns the attributes set after the build that the definition does not make (a BatchNorm's ``eps``
    set for weights ported from TensorFlow, a stride changed by hand), by module path: the config
    records them and ``from_pretrained`` sets them again. A changed attribute that is not a plain value
    is refused, naming the line and the attribute."""
    trusted = tuple({name.partition(":")[0] for name in names} | set(file.trusted if file is not None else ()))
    try:
        again = _build(config, trusted, "meta", file=file)
    except NeurlinkError as error:  # (a definition file's error too: the save is what failed)
        raise PretrainedError(f"the definition does not build again: {error}") from None
    difference = _first_difference(_layout(again), _layout(network))
    if difference is not None:
        path, how = difference
        fused = any(type(module).__name__ == "FoldedNorm" for module in network.modules())
        mismatch = PretrainedError(
            f"the network no longer matches its definition (a module was replaced or added after the build): {how}",
            allowed="save it before fuse() and fuse after from_pretrained (a fused network's norms are folded"
            " into its convs)"
            if fused
            else "save a network as built (changing weights is fine); to fine-tune on other classes, build"
            " with num_classes=... and load the other weights into it, or build the changed definition",
        )
        _locate_module(network, path, mismatch)
        raise mismatch
    changed: dict[str, dict[str, Any]] = {}
    built = dict(again.named_modules())
    for path, module in network.named_modules():
        made = _attributes(built[path])
        for key, value in _attributes(module).items():
            if key in made and _same_value(made[key], value):
                continue
            if key not in made:
                reason = f"its attribute {key!r} ({_short(value)}) was added after the build: the definition makes none"
            elif not (_plain(value) and _plain(made[key])):
                reason = f"its attribute {key!r} is {_short(value)}, the definition makes {_short(made[key])}"
            else:
                changed.setdefault(path, {})[key] = value
                continue
            refused = PretrainedError(
                f"module {path or '(the network)'!r}: {reason}; a checkpoint records only the attributes a"
                " definition makes, changed after the build to plain values (numbers, strings, tuples of them)",
                allowed="save a network as built, or one whose changed attributes are plain values"
                " (a tensor that belongs in the checkpoint is a buffer: module.register_buffer(name, tensor))",
            )
            _locate_module(network, path, refused)
            raise refused
    return changed


def _attributes(module: nn.Module) -> dict[str, Any]:
    """A module's own public attributes (not its children or mode): what its constructor set. A tensor
    held as a plain attribute (not a parameter or buffer) is one of them: the weights do not hold it."""
    return {
        key: _python_scalar(value)
        for key, value in vars(module).items()
        if not key.startswith("_") and key != "training" and not isinstance(value, nn.Module)
    }


def _python_scalar(value: Any) -> Any:
    """A NumPy scalar (``eps=np.float32(1e-3)``) as the Python number it holds: plain, and written as one."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()
    return value


def _plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(item) for item in value)
    return isinstance(value, _SCALARS)


def _same_value(made: Any, value: Any) -> bool:
    if _plain(made) and _plain(value):
        return type(made) is type(value) and made == value and repr(made) == repr(value)  # 1 == True == 1.0
    if type(made) is not type(value):
        return False
    if isinstance(value, torch.Tensor):  # the rebuild is on meta: a tensor attribute's values cannot match there
        return made.is_meta is False and made.shape == value.shape and bool(torch.equal(made, value.to(made.device)))
    try:  # a value the definition makes again (dims, a geometry, a function) compares equal
        return bool(made == value) or repr(made) == repr(value)
    except Exception:
        return repr(made) == repr(value)


def _plain_data(data: Any) -> bool:
    """Whether JSON data is a plain value as ``encode_value`` writes one (a scalar, a list, a tuple, inf)."""
    if isinstance(data, list):
        return all(_plain_data(item) for item in data)
    if isinstance(data, dict):
        ((key, value),) = data.items() if len(data) == 1 else ((None, None),)
        return (key == "tuple" and isinstance(value, list) and _plain_data(value)) or (
            key == "float" and value in ("inf", "-inf", "nan")
        )
    return isinstance(data, _SCALARS)


def _locate_module(network: nn.Module, path: str, error: PretrainedError) -> None:
    """Name the top-level line that holds the module at ``path`` in ``error``."""
    table = network.__dict__.get("_table")
    head = path.split(".")[0]
    if table is None or not head.isdigit() or int(head) >= len(table.entries):
        return
    entry = table.entries[int(head)]
    error.locate(entry.index, entry.tag, entry.written)


def _set_attributes(network: nn.Module, attributes: Any, reader: Reader) -> None:
    """Set the attributes a config records (``_check_rebuilds``) on a network built from it.

    Only an existing public attribute whose value is plain, to a plain value: a config cannot give a
    module an attribute it does not have, replace a method, or set a private or non-plain one."""
    if not isinstance(attributes, dict):
        reader.fail("attributes", "expected an object of module paths")
    modules = dict(network.named_modules())
    for path, values in attributes.items():
        where = f"attributes.{path}"
        if path not in modules:
            reader.fail(where, "the network has no module of this path")
        if not isinstance(values, dict):
            reader.fail(where, "expected an object of attributes")
        module, own = modules[path], _attributes(modules[path])
        for key, data in values.items():
            if not _plain_data(data):  # read only after this: a plain value names nothing to import
                reader.fail(f"{where}.{key}", "not a plain value (a number, a string, or a tuple or list of them)")
            value = reader.value(data, f"{where}.{key}")
            if key not in own or not _plain(own[key]):
                reader.fail(f"{where}.{key}", "not a plain attribute of the module the definition makes")
            if not _plain(value):
                reader.fail(f"{where}.{key}", f"{_short(value)} is not a plain value")
            if not _same_kind(own[key], value):  # eps="big", a stride of another rank: torch would fail later
                reader.fail(
                    f"{where}.{key}", f"{_short(value)} is not of the kind the module holds there ({_short(own[key])})"
                )
            setattr(module, key, value)


def _same_kind(made: Any, value: Any) -> bool:
    """Both of one type (an int where an int is, a tuple of as many items), item by item."""
    if isinstance(made, (tuple, list)):
        return type(value) is type(made) and len(value) == len(made) and all(map(_same_kind, made, value))
    return type(value) is type(made) or (type(made) is float and type(value) is int)


def _layout(network: nn.Module) -> dict[tuple[str, str], Any]:
    """Each module's class and each tensor's shape, by (kind, path)."""
    layout: dict[tuple[str, str], Any] = {
        ("module", name): _class_text(type(module)) for name, module in network.named_modules()
    }
    layout.update({("tensor", key): tuple(value.shape) for key, value in network.state_dict().items()})
    return layout


def _class_text(cls: type) -> str:
    """A module's class as a user knows it: neurlink's own torch subclasses say which torch class they are."""
    if cls.__module__.startswith("neurlink.") and not issubclass(cls, LinesModule):
        base = next((k for k in cls.__mro__[1:] if k.__module__.startswith("torch.nn.modules")), None)
        if base is not None:
            return f"{cls.__name__} (an nn.{base.__name__})"
    return cls.__name__


def _first_difference(built: dict, given: dict) -> tuple[str, str] | None:
    """The first module or tensor (in the network's order) that differs: its path, and how."""
    for key in [*given, *(key for key in built if key not in given)]:
        if built.get(key) != given.get(key):
            kind, path = key
            shown = f"{kind} {path or '(the network)'!r}"
            return path, f"{shown} is {given.get(key, 'missing')}, the definition makes {built.get(key, 'none')}"
    return None


# --- loading ------------------------------------------------------------------------------------


def from_pretrained(
    directory: str | os.PathLike[str],
    *,
    trusted: str | ModuleType | Iterable[str | ModuleType] = (),
    device: torch.device | str | None = None,
) -> Network:
    """Build the network saved in ``directory`` by ``save_pretrained`` and load its weights, strictly.

    ``directory`` may also be a Hugging Face Hub repository id (``"user/repo"`` that is not a
    directory here), fetched with ``huggingface_hub.snapshot_download`` when that is installed.
    Classes and functions are imported only from neurlink, torch and the modules listed in
    ``trusted`` (the modules of your own nerves). The network is returned in eval mode, on
    ``device``, with the saved dtype. Every problem is a :class:`~neurlink.errors.NeurlinkError`
    naming the file: nothing half-loaded is returned.
    """
    trusted = _names.trusted_roots(trusted)
    folder = _locate(directory)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    config = _read_config(config_path)
    file = _read_definition_file(folder, config, config_path)
    pinned = _pin(weights_path)  # every read of the weights is of this one file, whatever a save does meanwhile
    try:
        return _load(pinned, config, config_path, trusted, device, file)
    finally:
        pinned.close()


def _load(
    pinned: _files.Pinned,
    config: dict,
    config_path: Path,
    trusted: tuple[str, ...],
    device: Device,
    file: DefinitionFile | None,
) -> Network:
    weights_path = pinned.shown
    header, metadata = _files.read_header(pinned)
    _check_same_save(config, metadata, config_path, weights_path)
    definition_path = file.shown if file is not None else str(config_path)  # what the weights must fit
    try:
        _build(config, trusted, None, check_only=True, file=file)  # every name passes the rule before any import
        meta = _build(config, trusted, "meta", file=file)
        fake = {key: torch.empty(shape, dtype=dtype, device="meta") for key, (dtype, shape) in header.items()}
        check_state_dict(meta, fake)  # a changed definition, line by line, before any memory is spent
        _check_dtypes(meta, header, config)
        # the weights become the meta network's tensors where they are all its tensors (one copy in
        # memory, no init); else a network is built on the device and the weights copied into it
        on_meta = torch.device(device or "cpu").type == "meta"
        assign = not on_meta and _state_is_every_tensor(meta)
        network = meta if on_meta or assign else _build(config, trusted, device, file=file)
    except CheckpointError as error:
        raise CheckpointError(f"{weights_path} does not fit {definition_path}: {error}") from None
    except NeurlinkError as error:
        if _names_its_file(error):
            raise  # a definition file's error, at its line
        raise PretrainedError(f"{config_path}: {error}") from None
    # what save_pretrained wrote is a Network's (a zoo builder's or nv.build's), so one is built from it
    network = cast("Network", network)
    if on_meta:
        return network.eval()  # checked against the file's shapes above; there are no values to load
    _load_weights(network, pinned, header, config_path, device, assign=assign)
    if assign:
        network._start_checks(as_built=True)  # the tree as built, its tensors the loaded ones
    return network.eval()


def _state_is_every_tensor(network: nn.Module) -> bool:
    """Whether the state_dict holds every tensor the network has (no non-persistent buffer, no tensor
    held as a plain attribute): then loading it in place of the meta tensors leaves none on meta."""
    state = network.state_dict(keep_vars=True)
    held = {id(t) for t in state.values()}
    tensors = [
        t
        for _, t in (*network.named_parameters(remove_duplicate=False), *network.named_buffers(remove_duplicate=False))
    ]
    attributes = any(isinstance(v, torch.Tensor) for m in network.modules() for v in vars(m).values())
    return not attributes and all(id(t) in held for t in tensors)


def _check_same_save(config: dict, metadata: dict[str, str], config_path: Path, weights_path: Path) -> None:
    """The definition and the weights come from one save (a checkpoint of neurlink < 0.4 records no id)."""
    written, found = config.get("weights_id"), metadata.get(_files.WEIGHTS_ID_KEY)
    if found is None:
        return  # weights written by another tool (or an older neurlink): the checks of their tensors apply
    if written != found:
        raise PretrainedError(
            f"{config_path} and {weights_path} were written by different saves (one was interrupted, or two"
            " ran at once): the definition may not be the one the weights belong with",
            allowed="save the network again (or copy both files from one save); weights written by another"
            " tool carry no neurlink_weights_id and are checked tensor by tensor",
        )


def _load_weights(
    network: nn.Module, pinned: _files.Pinned, header: dict, config_path: Path, device: Device, *, assign: bool
) -> None:
    """The weights, read line by line from the file opened (``pinned``) into tensors of their own: as the
    tensors of a network built on the meta device (``assign``: the weights once in memory), or copied
    into a built network's own (one line's tensors beside it). Never views of a mapping of the file,
    which would change under the network if the file were written in place later. A weight that is
    NaN or infinite is loaded, with a warning naming it."""
    weights_path = pinned.shown
    target = torch.device(device) if device is not None else torch.device("cpu")
    by_line: dict[str, list[str]] = {}
    for key in header:
        by_line.setdefault(key.partition(".")[0], []).append(key)
    unfinite = []
    try:
        for name, keys in by_line.items():
            tensors = {key: pinned.tensor(key, *header[key]).to(target) for key in keys}
            unfinite += [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
            owner = network.get_submodule(name) if name in network._modules else network
            prefix = f"{name}." if owner is not network else ""
            part = {k.removeprefix(prefix): t for k, t in tensors.items()}
            nn.Module.load_state_dict(owner, part, strict=False, assign=assign)
    except (CheckpointError, RuntimeError) as error:
        raise CheckpointError(f"{weights_path} does not fit {config_path}: {error}") from None
    except OSError as error:
        raise PretrainedError(f"{weights_path}: cannot be read: {error}") from None
    if unfinite:
        shown = ", ".join(map(repr, unfinite[:5])) + (f" and {len(unfinite) - 5} more" if len(unfinite) > 5 else "")
        warnings.warn(f"{weights_path}: tensor(s) {shown} hold NaN or infinite values", stacklevel=3)


def _check_dtypes(meta: nn.Module, header: dict, config: dict) -> None:
    """A network of one dtype takes tensors of that dtype: nothing is cast silently (int8 into float32)."""
    if config.get("dtype") is None:
        return  # a network of several dtypes: the state_dict's own checks apply
    own = meta.state_dict()
    for key, (dtype, _) in header.items():
        if key in own and own[key].dtype != dtype:
            raise CheckpointError(f"tensor {key!r} is {dtype}, but the definition's is {own[key].dtype}")


def _locate(directory: str | os.PathLike[str]) -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise PretrainedError(f"{directory!r} is not a path", allowed="a directory written by save_pretrained")
    folder = Path(directory)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise PretrainedError(
            f"{folder}: is a file, not a directory",
            allowed="the directory save_pretrained wrote (it holds config.json)",
        )
    text = os.fspath(directory)
    # "user/repo" is a Hub id unless its first part is a folder here: checkpoints/run1 beside ./checkpoints
    # is a local path that is not there, not a repository to look up
    local = Path(text.split("/")[0]).is_dir() if isinstance(text, str) else True
    if isinstance(text, str) and _HUB_ID.fullmatch(text) and ".." not in text and not local:
        return _from_hub(text)
    raise CheckpointNotFoundError(f"{folder}: no such directory", allowed="a directory written by save_pretrained")


def _from_hub(repo_id: str) -> Path:
    try:
        import huggingface_hub
    except ImportError:
        raise PretrainedError(
            f"{repo_id}: no such directory, and huggingface_hub, which would read it as a Hub repository id,"
            " is not installed",
            allowed="a directory written by save_pretrained, or pip install huggingface_hub",
        ) from None
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id=repo_id, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, *DEFINITION_NAMES.values()]
        )
    except Exception as error:
        raise PretrainedError(
            f"{repo_id}: no such directory, and the Hugging Face Hub gives no repository of that id"
            f" ({type(error).__name__}: {error})"
        ) from None
    return Path(folder)


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise PretrainedError(f"{path}: no such file (save_pretrained writes {CONFIG_NAME} and {WEIGHTS_NAME})")
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise PretrainedError(f"{path}: {path.stat().st_size} bytes is too large for a definition")
    try:
        config = json.loads(
            path.read_text(encoding="utf-8"), parse_constant=_no_constant, object_pairs_hook=_no_duplicate_keys
        )
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PretrainedError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise PretrainedError(f"{path}: a config is a JSON object, not {a_kind(type(config).__name__)}")
    unknown = sorted(set(config) - _TOP_KEYS)
    if unknown:
        raise PretrainedError(f"{path}: unknown key {unknown[0]!r}", allowed=", ".join(sorted(_TOP_KEYS)))
    if config.get("format") != FORMAT:
        raise PretrainedError(f"{path}: not a neurlink config (format {config.get('format')!r}, not {FORMAT!r})")
    version = config.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise PretrainedError(
            f"{path}: format version {version!r} is not one this neurlink reads",
            allowed=f"format_version {' or '.join(map(str, READABLE_VERSIONS))}; a newer neurlink reads newer versions",
        )
    if sum(key in config for key in ("model", "lines", "definition_file")) != 1:
        raise PretrainedError(
            f"{path}: a config has one of 'model' (a zoo model), 'lines' (a definition) and 'definition_file'"
            " (the definition file beside it)"
        )
    if config.get("dtype") is not None and (
        not isinstance(config["dtype"], str)
        or config["dtype"] not in _DTYPES
        or not _DTYPES[config["dtype"]].is_floating_point
    ):
        raise PretrainedError(f"{path}: dtype {config['dtype']!r} is not a floating-point torch dtype")
    return config


def _read_definition_file(folder: Path, config: dict, config_path: Path) -> DefinitionFile | None:
    """The definition file the config names, checked to be the one that save wrote (its hash)."""
    entry = config.get("definition_file")
    if entry is None:
        return None
    kinds = {name: kind for kind, name in DEFINITION_NAMES.items()}
    if (
        not isinstance(entry, dict)
        or set(entry) != {"name", "sha256"}
        or entry["name"] not in kinds
        or not isinstance(entry["sha256"], str)
    ):
        raise PretrainedError(
            f"{config_path}: definition_file is {_short(entry)}",
            allowed=f"{{'name': {' or '.join(map(repr, kinds))}, 'sha256': the file's hash}}",
        )
    definition_hooks.hooks()  # (registered when neurlink is imported)
    path = folder / entry["name"]
    if not path.exists():
        raise PretrainedError(f"{path}: no such file ({config_path} names it as the definition of the weights)")
    try:
        data = _files.read_bounded(path, MAX_DEFINITION_BYTES)
        if len(data) > MAX_DEFINITION_BYTES:
            raise PretrainedError(f"{path}: more than {MAX_DEFINITION_BYTES:,} bytes is too large for a definition")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PretrainedError(f"{path}: cannot be read: {error}") from None
    if _sha256(text) != entry["sha256"]:
        raise PretrainedError(
            f"{path} is not the file the save of {config_path} wrote (it was edited after the save, or comes from"
            " another save): the weights may not belong with it",
            allowed="the checkpoint as saved; to load these weights into an edited definition, build it with"
            " neurlink.from_file and call load_state_dict, then save_pretrained again",
        )
    return DefinitionFile(text, kinds[entry["name"]], str(path))


def _names_its_file(error: NeurlinkError) -> bool:
    """An error that names a definition file and its line (``neurlink.definition_files``' errors)."""
    return isinstance(getattr(error, "file", None), str)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _no_duplicate_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} is given twice")
        result[key] = value
    return result


@overload
def _build(
    config: dict,
    trusted: tuple[str, ...],
    device: Device,
    *,
    check_only: Literal[False] = False,
    file: DefinitionFile | None = None,
) -> nn.Module: ...


@overload
def _build(
    config: dict, trusted: tuple[str, ...], device: Device, *, check_only: Literal[True], file: DefinitionFile | None
) -> None: ...


def _build(
    config: dict,
    trusted: tuple[str, ...],
    device: Device,
    *,
    check_only: bool = False,
    file: DefinitionFile | None = None,
) -> nn.Module | None:
    """The network a config describes (or the definition ``file`` it keeps beside it), on ``device``;
    with ``check_only``, only checks it (imports nothing but the trusted modules the file names)."""
    from .network import build

    reader = Reader(trusted, resolve=not check_only)

    def read() -> Callable[[], nn.Module]:
        """The config's values (modules in it made on the current device), and how to build the network."""
        if file is not None:  # (its reader checks every name of it before importing anything, also in build)
            hooks = definition_hooks.hooks()
            if check_only:
                hooks.check(file, trusted)
            return lambda: hooks.build(file, trusted)
        if "model" in config:
            model = reader.obj(config["model"], {"name", "keywords"}, "model", {"name"})
            name, keywords = model["name"], model.get("keywords", {})
            if not isinstance(name, str) or name not in list_models():
                reader.fail("model.name", f"{_short(name)} is not a model of the zoo")
            if not isinstance(keywords, dict):
                reader.fail("model.keywords", "expected an object")
            if "weights" in keywords:  # a saved model's weights are its model.safetensors: never a download
                reader.fail("model.keywords.weights", "a saved model takes its weights from its own file")
            values = {key: reader.value(value, f"model.keywords.{key}") for key, value in keywords.items()}
            return lambda: create_model(name, **values)
        lines = reader.lines(config["lines"])
        outputs = config.get("outputs")
        outputs = None if outputs is None else reader.value(outputs, "outputs")
        return lambda: build(lines, outputs=outputs)

    if check_only:
        read()
        attributes = config.get("attributes")
        for path, values in attributes.items() if isinstance(attributes, dict) else ():
            for key, data in values.items() if isinstance(values, dict) else ():
                if not _plain_data(data):
                    reader.fail(
                        f"attributes.{path}.{key}", "not a plain value (a number, a string, or a tuple of them)"
                    )
        return None
    dtype = _DTYPES[config["dtype"]] if config.get("dtype") is not None else None
    try:
        # modules written in the config are made inside the device context too: on the meta device
        # first, so that a config cannot spend memory before its shapes are checked against the weights
        with torch.device(device) if device is not None else contextlib.nullcontext(), _budget(config, device):
            network = read()()
            if "attributes" in config:
                _set_attributes(network, config["attributes"], reader)
            if dtype is not None and dtype != torch.get_default_dtype():
                network = network.to(dtype)
    except NeurlinkError as error:
        if _names_its_file(error):
            raise
        raise PretrainedError(f"the definition does not build: {error}") from None
    except (Exception, RecursionError) as error:
        raise PretrainedError(f"the definition does not build: {type(error).__name__}: {error}") from None
    return network


# torch calls the shape-only build of a file's definition may make, and per line: the zoo's largest
# (hrnet_w18..w64) make 7,200 in all, a conv line about 5; a module that copies its argument a million
# times (nn.TransformerEncoder(layer, num_layers=10**6)) is stopped within a second or two instead of
# running for a minute and then out of memory
_META_CALLS = 40_000
_META_CALLS_PER_LINE = 25


class _TorchCallBudget(TorchFunctionMode):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = self.left = limit

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.left -= 1
        if self.left < 0:
            raise PretrainedError(
                f"building it makes more than {self.limit:,} torch calls on the meta device, far more than a"
                " network of its lines makes (a module copying its argument a million times?)"
            )
        return func(*args, **(kwargs or {}))


def _budget(config: dict, device: Device) -> contextlib.AbstractContextManager:
    """The bound on the shape-only build (the later builds make what it made). A definition file's reader
    bounds its own, by the file's lines."""
    if device != "meta" or "definition_file" in config:
        return contextlib.nullcontext()
    lines = config.get("lines")
    return _TorchCallBudget(_META_CALLS + _META_CALLS_PER_LINE * (len(lines) if isinstance(lines, list) else 0))


def _pin(path: Path) -> _files.Pinned:
    if not path.is_file():
        raise PretrainedError(f"{path}: no such file (save_pretrained writes {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        return _files.Pinned(path)
    except OSError as error:
        raise PretrainedError(f"{path}: cannot be read: {error}") from None
