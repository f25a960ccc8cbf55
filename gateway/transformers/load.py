"""Load a transformer directory: read and parse every file, never raising for a bad one.

Each file is read safely (:mod:`~gateway.transformers.files`) and parsed
(:mod:`~gateway.transformers.parse`) with one converter shared by the files of
the load. The outcome per file is a :class:`LoadedFile`: its transformer, or
the problem lines that kept it from loading. Which files then serve is
:mod:`~gateway.transformers.assemble`'s business.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import cattrs

from gateway.transformers import files
from gateway.transformers.model import Transformer
from gateway.transformers.parse import TransformerError, parse_transformer
from gateway.transformers.schema import make_converter

__all__ = ["LoadedFile", "load_directory", "load_file"]


@attrs.frozen
class LoadedFile:
    """The outcome of reading and parsing one file of a directory."""

    file: str
    transformer: Transformer | None
    problems: tuple[str, ...] = ()


def load_file(
    path: Path, env: Mapping[str, str], *, converter: cattrs.Converter | None = None
) -> LoadedFile:
    """Read and parse one file; never raises for a bad or unreadable file."""
    limit = files.MAX_FILE_BYTES  # read at call time: tests lower it
    try:
        raw = files.read_regular_file(path, limit + 1)
    except files.NotRegularFile as exc:
        return LoadedFile(path.name, None, (f"{path.name}: {exc}",))
    except OSError as exc:
        return LoadedFile(path.name, None, (f"{path.name}: cannot read ({exc.strerror})",))
    if len(raw) > limit:
        return LoadedFile(path.name, None, (f"{path.name}: larger than {limit} bytes",))
    try:
        return LoadedFile(path.name, parse_transformer(raw, path.name, env, converter=converter))
    except TransformerError as exc:
        return LoadedFile(path.name, None, exc.problems)


def load_directory(
    directory: str | os.PathLike[str], env: Mapping[str, str]
) -> tuple[LoadedFile, ...]:
    """Read and parse every transformer file of ``directory``, by file name.

    Raises:
        OSError: the directory cannot be listed.
    """
    base = Path(directory)
    names = files.list_transformer_files(base)
    converter = make_converter()
    return tuple(load_file(base / name, env, converter=converter) for name in names)
