"""A transformer file exactly as written, and the strict converter that reads it.

Stage 2 of parsing (:mod:`gateway.transformers.parse` has the three stages):
the decoded JSON object is structured into :class:`TransformerFile`, the file
before ``${VAR}`` expansion and before the checks of meaning. The converter is
:func:`gateway.strict.make_converter`'s, shared with the settings: unknown keys,
wrong JSON types (``"5"`` for a number, ``1`` for a boolean) and values outside
an enumeration are errors, nothing is coerced, and every problem has its key
path. Particular to this format: a model entry may be a lone string, standing
for ``{"model": ...}``, and ``format`` is one of the registered wire formats or
the mock (:data:`gateway.transformers.model.PROVIDER_FORMATS`).
"""

from __future__ import annotations

import attrs
import cattrs

from gateway.strict import make_converter as make_strict_converter
from gateway.strict import one_of
from gateway.transformers.model import (
    DEFAULT_COOLDOWN_S,
    PROVIDER_FORMATS,
    ModelEntry,
    ProviderFormat,
    RequestEdits,
    Retry,
    StreamMode,
    Timeouts,
)

__all__ = ["TransformerFile", "make_converter"]


@attrs.frozen
class TransformerFile:
    """A transformer file exactly as written, before expansion and checks."""

    format: ProviderFormat
    name: str | None = None
    base_url: str | None = None
    keys: tuple[str, ...] | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    key_header: str | None = None
    query: dict[str, str] = attrs.field(factory=dict)
    tls_verify: bool | str = True
    models: dict[str, ModelEntry] = attrs.field(factory=dict)
    request: RequestEdits = attrs.field(factory=RequestEdits)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    retry: Retry = attrs.field(factory=Retry)
    cooldown_s: tuple[float, ...] = DEFAULT_COOLDOWN_S
    stream: StreamMode = "native"
    realtime_url: str | None = None
    default: bool = False
    weight: float = 1.0
    forward_client_key: bool = False
    max_concurrency: int | None = None


def make_converter() -> cattrs.Converter:
    """A new strict converter for transformer files (a string model entry is its ``model``).

    One per load is enough: it compiles its hooks on first use, so the files
    of one load share it.
    """
    conv = make_strict_converter(shorthands={ModelEntry: "model"})
    # The formats are registered at run time (gateway.formats), so not a Literal type.
    conv.register_structure_hook(ProviderFormat, one_of(PROVIDER_FORMATS))
    return conv
