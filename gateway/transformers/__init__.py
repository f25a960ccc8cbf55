"""Provider transformer files: the frozen model, the loader, and the hot-swapped registry.

See design.md, "Transformer files". The submodules:

* :mod:`~gateway.transformers.model`: frozen specs (:class:`Transformer`, ...).
* :mod:`~gateway.transformers.loader`: :func:`parse_transformer`, :func:`check_directory`.
* :mod:`~gateway.transformers.registry`: :class:`Registry` snapshots and the
  :class:`RegistryHolder` that polls the directory and swaps them.
"""

from __future__ import annotations

from gateway.transformers.loader import (
    TransformerError,
    check_directory,
    make_converter,
    parse_transformer,
)
from gateway.transformers.model import (
    ModelEntry,
    RequestEdits,
    Retry,
    Timeouts,
    Transformer,
    expand_env,
)
from gateway.transformers.registry import (
    Registry,
    RegistryHolder,
    build_registry,
    make_registry,
    scan_directory,
)

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
    "check_directory",
    "expand_env",
    "make_converter",
    "make_registry",
    "parse_transformer",
    "scan_directory",
]
