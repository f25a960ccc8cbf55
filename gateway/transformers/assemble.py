"""Which version of each transformer file serves: the rules across files.

Files are taken in order of file name. A file whose ``name`` or
``"default": true`` clashes with an earlier file fails; a file that failed
(to load, or by clashing) keeps its previous good version when that one does
not clash, and otherwise serves nothing. Pure: the caller supplies this load's
:class:`~gateway.transformers.load.LoadedFile` list and the previous versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from gateway.transformers.load import LoadedFile
from gateway.transformers.model import Transformer

__all__ = ["Assembly", "assemble"]


@attrs.frozen
class Assembly:
    """Which version of each file serves, and what went wrong per file.

    Attributes:
        serving: file name -> the transformer it contributes (the new version,
            or the previous good one when the new one failed), by file name.
        problems: file name -> its problem lines, for files that failed.
    """

    serving: Mapping[str, Transformer]
    problems: Mapping[str, tuple[str, ...]]


def _clash(candidate: Transformer, names: Mapping[str, str], default: str | None) -> str | None:
    if candidate.name in names:
        return f"name: {candidate.name!r} is already used by {names[candidate.name]}"
    if candidate.default and default is not None:
        return f"default: {default} is already the default provider"
    return None


def assemble(files: Iterable[LoadedFile], previous: Mapping[str, Transformer]) -> Assembly:
    """Settle cross-file rules and fall back to previous good versions.

    Args:
        files: this load's outcome per file.
        previous: file name -> the version that served before this load.

    Returns:
        The files that serve, and the problems of those that failed.
    """
    serving: dict[str, Transformer] = {}
    problems: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    default: str | None = None
    for loaded in sorted(files, key=lambda f: f.file):
        found = list(loaded.problems)
        candidates = [loaded.transformer, previous.get(loaded.file)]
        for candidate in candidates:
            if candidate is None:
                continue
            clash = _clash(candidate, names, default)
            if clash is None:
                serving[loaded.file] = candidate
                names[candidate.name] = loaded.file
                default = loaded.file if candidate.default else default
                break
            if candidate is loaded.transformer:
                found.append(f"{loaded.file}: {clash}")
        if found:
            problems[loaded.file] = tuple(found)
    return Assembly(serving=serving, problems=problems)
