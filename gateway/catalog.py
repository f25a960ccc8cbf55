"""Model names as clients send them, and the catalog of models the gateway serves.

Two things every front end needs and nothing else about routing:

- :func:`check_model_name`: the check every endpoint that takes a model name
  applies before routing, logging or echoing it (at most 256 characters, no
  control characters: CR/LF/NUL in one could split a header or a log line).
- :class:`Catalog`: what the model-list endpoints read (``GET /v1/models``,
  ``GET /v1beta/models``, and one model by name). The formats render it in
  their own list format; :mod:`gateway.routing` builds it from a registry
  snapshot. Keeping it a protocol here means the wire formats (lowest layer)
  never import routing or the transformer registry, which read the formats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import attrs

from gateway.errors import BadRequest

__all__ = ["MAX_MODEL_CHARS", "Catalog", "CatalogModel", "check_model_name"]

#: Longest model name accepted (real ones are well under 100 characters).
MAX_MODEL_CHARS = 256
#: C0 controls, DEL and C1 controls: never part of a model name, and CR/LF/NUL in one
#: could split a header or a log line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_model_name(model: str) -> str:
    """``model`` if it is a usable model name, else a 400 that says what is wrong.

    Every endpoint that takes a model (the front ends, ``/v1/models/{id}``)
    checks it here before routing, logging or echoing it.
    """
    if len(model) > MAX_MODEL_CHARS:
        raise BadRequest(
            f"The model name is {len(model)} characters long; "
            f"this gateway accepts at most {MAX_MODEL_CHARS}."
        )
    bad = _CONTROL.search(model)
    if bad:
        raise BadRequest(
            f"The model name holds a control character (U+{ord(bad.group()):04X}) "
            f"at position {bad.start()}; remove it."
        )
    return model


@attrs.frozen
class CatalogModel:
    """One model a client may name.

    Attributes:
        id: the name a client sends.
        owner: the provider that serves it (the first in file order for a shared alias).
        created: when the serving snapshot was loaded (Unix seconds).
        max_tokens: the provider file's output-token limit for it, if it sets one.
    """

    id: str
    owner: str
    created: int
    max_tokens: int | None = None


class Catalog(Protocol):
    """The models of one transformer snapshot, as the model-list endpoints see them."""

    def listed(self) -> Sequence[CatalogModel]:
        """Every alias once, in file order; wildcard entries are not listed."""
        ...

    def find(self, model_id: str) -> CatalogModel | None:
        """A listed alias, or any other name that routes somewhere; None: it does not."""
        ...
