"""Provider transformer files: the frozen model, parsing and loading, and the hot-swapped registry.

See design.md, "Transformer files". The submodules, from the bottom up:

* :mod:`~gateway.transformers.model`: frozen specs (:class:`Transformer`, ...).
* :mod:`~gateway.transformers.schema`: the file as written and its strict converter.
* :mod:`~gateway.transformers.checks`, :mod:`~gateway.transformers.expand`: what
  types cannot say, and ``${VAR}`` expansion.
* :mod:`~gateway.transformers.parse`: :func:`parse_transformer`, bytes to a transformer.
* :mod:`~gateway.transformers.files`: which entries count, reading only regular files.
* :mod:`~gateway.transformers.load`: a directory to one outcome per file.
* :mod:`~gateway.transformers.assemble`: which version of each file serves.
* :mod:`~gateway.transformers.registry`: :class:`Registry` snapshots and the
  :class:`RegistryHolder` that polls the directory and swaps them.

The ``check`` command (:mod:`gateway.check`) sits above this package and routing.
"""

from __future__ import annotations

from gateway.transformers.model import (
    ModelEntry,
    RequestEdits,
    Retry,
    Timeouts,
    Transformer,
    expand_env,
)
from gateway.transformers.parse import TransformerError, parse_transformer
from gateway.transformers.registry import (
    Registry,
    RegistryHolder,
    build_registry,
    make_registry,
    scan_directory,
)
from gateway.transformers.schema import make_converter

__all__ = [
    "ModelEntry",
    "Registry",
    "RegistryHolder",
    "RequestEdits",
    "Retry",
    "Timeouts",
    "Transformer",
    "TransformerError",
    "build_registry",
    "expand_env",
    "make_converter",
    "make_registry",
    "parse_transformer",
    "scan_directory",
]
