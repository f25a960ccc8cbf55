"""``${VAR}`` and ``${VAR:-default}`` expansion, shared by settings and transformer files.

An unset or empty ``VAR`` gives the default (or ""). Error messages never
repeat the text, which may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["expand_env", "referenced_vars"]

_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$]*))?\}")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in ``text`` from ``env``.

    Args:
        text: the string from the file.
        env: where variables come from (``os.environ`` in the server).

    Returns:
        ``text`` with every reference replaced.

    Raises:
        ValueError: ``text`` holds a ``${`` that is not a well-formed reference.
            The message never repeats ``text``, which may be a secret.
    """
    if "${" not in text:
        return text
    if "${" in _VAR_REF.sub("", text):
        raise ValueError("malformed ${...} reference (use ${NAME} or ${NAME:-default})")
    return _VAR_REF.sub(lambda m: env.get(m[1]) or (m[2] or ""), text)


def referenced_vars(text: str) -> tuple[str, ...]:
    """The names of the variables ``text`` refers to, in order of appearance."""
    return tuple(m[1] for m in _VAR_REF.finditer(text))
