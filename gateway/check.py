"""``python -m gateway check``: is a transformer directory fit to serve?

It runs the steps of a reload (:func:`~gateway.transformers.load.load_directory`,
then :func:`~gateway.transformers.assemble.assemble` with no previous versions)
and reports every problem as ``file: key.path: message``; any problem means the
directory is not fit to serve (exit 1). It then builds the registry a reload
would build and routes each fallback through it, so it sits above routing and
the registry (nothing below imports it); what only this command reports are
warnings, which do not fail the check: keys listed but none set, a CA bundle
that does not exist, fallbacks that route to no provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gateway.errors import ModelNotFound
from gateway.routing import route
from gateway.strict import format_path
from gateway.transformers.assemble import assemble
from gateway.transformers.load import load_directory
from gateway.transformers.model import Transformer
from gateway.transformers.registry import make_registry

__all__ = ["check_directory", "run_check"]


def _warnings(serving: Mapping[str, Transformer]) -> list[str]:
    registry = make_registry(serving.values())
    out: list[str] = []
    for file, t in serving.items():
        if t.keys_listed and not t.keys:
            names = ", ".join(t.key_vars)
            gap = f"none of {names} is set" if len(t.key_vars) > 1 else f"{names} is not set"
            out.append(f"{file}: keys: {gap if t.key_vars else 'every key is empty'}")
        if isinstance(t.tls_verify, str) and not os.path.exists(t.tls_verify):
            out.append(f"{file}: tls_verify: the CA bundle file does not exist")
        for alias, entry in t.models.items():
            for i, fallback in enumerate(entry.fallbacks):
                try:
                    route(fallback, registry)
                except ModelNotFound:
                    where = format_path(("models", alias, "fallbacks", i))
                    out.append(f"{file}: {where}: {fallback!r} does not route to any provider")
    return out


def check_directory(
    path: str | os.PathLike[str], env: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Check every transformer file of a directory.

    Args:
        path: the directory.
        env: where ``${VAR}`` references come from.

    Returns:
        ``(problems, warnings)``, each a list of ``file: key.path: message``
        lines. Any problem means the directory is not fit to serve; warnings
        (keys listed but none set, fallbacks that route nowhere) are not.
    """
    try:
        files = load_directory(path, env)
    except OSError as exc:
        return [f"{os.fspath(path)}: cannot read the directory ({exc.strerror})"], []
    assembly = assemble(files, {})
    problems = [line for lines in assembly.problems.values() for line in lines]
    warnings = _warnings(assembly.serving)
    if not files:
        warnings.append(f"{os.fspath(path)}: no *.json transformer files")
    return problems, warnings


def run_check(directory: str, env: Mapping[str, str]) -> int:
    """Print the check of ``directory`` on stdout; the exit status (1 on any problem)."""
    problems, warnings = check_directory(directory, env)
    for line in problems:
        print(line)
    for line in warnings:
        print(f"warning: {line}")
    if problems:
        return 1
    print(f"{directory}: ok")
    return 0
