"""The transformer registry: an immutable snapshot, and the holder that swaps it.

Theory of operation (design.md, "Transformer files", hot swap):

* A :class:`Registry` is a frozen snapshot of every serving provider plus the
  indexes routing needs (alias -> providers, the weighted round-robin
  schedule of each shared alias, the default provider). A request reads
  ``holder.current`` once and keeps that snapshot to the end, so a reload never
  changes the providers under a request in flight.
* :func:`build_registry` reads the whole directory and builds a new snapshot.
  Per file, a version that fails (bad JSON, a clash with an earlier file, an
  unreadable symlink) leaves that file's previous good version serving and
  records the error; the other files' changes apply. A deleted file's
  provider is gone.
* :func:`scan_directory` is the pure "what changed" stamp: ``(mtime_ns, size,
  inode)`` per file from :func:`os.stat`, which follows symlinks. A Kubernetes
  ConfigMap volume updates by atomically re-pointing ``..data`` at a new
  directory; every ``x.json -> ..data/x.json`` link then resolves to a new
  inode, so the stamp changes although the links themselves did not.
* :class:`RegistryHolder` is owned by the server. Its poller compares stamps
  every ``poll_interval_s`` and rebuilds on any change or on
  :meth:`RegistryHolder.request_reload` (SIGHUP). Files are read in a worker
  thread; the new snapshot replaces ``current`` in one assignment.

Limit: a rewrite that keeps size and inode within one mtime tick of the file
system goes unseen until the next change or SIGHUP (editors and ConfigMaps
replace files, which changes the inode).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import trio

from gateway.transformers.assemble import assemble
from gateway.transformers.files import list_transformer_files
from gateway.transformers.load import load_directory
from gateway.transformers.model import Transformer

__all__ = [
    "MAX_SCHEDULE",
    "Registry",
    "RegistryHolder",
    "Stamp",
    "build_registry",
    "make_registry",
    "scan_directory",
    "weighted_schedule",
]

logger = logging.getLogger("gateway.transformers")

#: ``(mtime_ns, size, inode)`` of a file; ``(-1, -1, -1)`` when it cannot be stat'ed.
Stamp = tuple[int, int, int]

#: Longest weighted round-robin cycle kept per alias. Weights whose exact ratio
#: needs a longer cycle are rounded to fit; 1000 slots keep each share within 0.1%.
MAX_SCHEDULE = 1000

_UNSTATABLE: Stamp = (-1, -1, -1)


def _frozen_map(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    # Not generic: mypy's attrs plugin cannot bind a type variable of a converter.
    return MappingProxyType(dict(mapping))


@attrs.frozen
class Registry:
    """An immutable snapshot of the providers that serve.

    Build one with :func:`make_registry` or :func:`build_registry`.

    Attributes:
        transformers: provider name -> transformer, in file-name order.
        errors: file name -> why its latest version failed (its last good
            version, if any, is still in ``transformers``).
        aliases: model alias -> names of the providers defining it, in file order.
        schedules: alias -> one cycle of its smooth weighted round-robin, for
            aliases served by more than one provider.
        default: the provider with ``"default": true``, if any.
        by_file: file name -> the transformer that file contributes.
        loaded_at: Unix time of the load, the ``created`` of listed models.
    """

    transformers: Mapping[str, Transformer] = attrs.field(converter=_frozen_map, hash=False)
    errors: Mapping[str, str] = attrs.field(converter=_frozen_map, hash=False)
    aliases: Mapping[str, tuple[str, ...]] = attrs.field(converter=_frozen_map, hash=False)
    schedules: Mapping[str, tuple[str, ...]] = attrs.field(converter=_frozen_map, hash=False)
    default: str | None
    by_file: Mapping[str, Transformer] = attrs.field(converter=_frozen_map, hash=False)
    loaded_at: int = 0

    @property
    def loaded(self) -> tuple[str, ...]:
        """Names of the serving providers, in file-name order."""
        return tuple(self.transformers)

    @property
    def degraded(self) -> bool:
        """Some file failed (``/health/ready`` answers ``"degraded"``)."""
        return bool(self.errors)

    @classmethod
    def empty(cls) -> Registry:
        """The snapshot before the first load: nothing serves."""
        return make_registry(())


def weighted_schedule(weights: Iterable[float]) -> tuple[int, ...]:
    """One cycle of smooth weighted round-robin (as nginx's upstream module) over ``weights``.

    Each index appears in proportion to its weight, spread out rather than in
    runs: weights 5, 1, 1 give ``0 0 1 0 2 0 0``. Equal weights give plain
    round-robin ``0 1 2``.
    """
    counts = _integer_weights(list(weights))
    total = sum(counts)
    current = [0] * len(counts)
    out: list[int] = []
    for _ in range(total):
        for i, count in enumerate(counts):
            current[i] += count
        best = max(range(len(counts)), key=current.__getitem__)
        current[best] -= total
        out.append(best)
    return tuple(out)


def _integer_weights(weights: list[float]) -> list[int]:
    """Smallest integers in the ratio of ``weights`` (rounded to fit :data:`MAX_SCHEDULE`)."""
    if not weights:
        return []
    fractions = [Fraction(w).limit_denominator(MAX_SCHEDULE) for w in weights]
    scale = math.lcm(*(f.denominator for f in fractions))
    counts = [int(f * scale) for f in fractions]
    divisor = math.gcd(*counts) or 1
    counts = [max(1, c // divisor) for c in counts]
    if sum(counts) > MAX_SCHEDULE:
        total = sum(counts)
        counts = [max(1, round(c * MAX_SCHEDULE / total)) for c in counts]
    return counts


def make_registry(
    transformers: Iterable[Transformer],
    *,
    errors: Mapping[str, str] | None = None,
    loaded_at: int = 0,
) -> Registry:
    """Index ``transformers`` (in file order) into a snapshot.

    Raises:
        ValueError: two transformers share a name, or two are the default
            (assembling a load never lets that happen; this guards direct callers).
    """
    by_name: dict[str, Transformer] = {}
    aliases: dict[str, list[str]] = {}
    default: str | None = None
    for t in transformers:
        if t.name in by_name:
            raise ValueError(f"two transformers are named {t.name!r}")
        if t.default and default is not None:
            raise ValueError(f"{default!r} and {t.name!r} are both the default provider")
        by_name[t.name] = t
        default = t.name if t.default else default
        for alias in t.models:
            if alias != "*":
                aliases.setdefault(alias, []).append(t.name)
    schedules = {
        alias: tuple(names[i] for i in weighted_schedule(by_name[n].weight for n in names))
        for alias, names in aliases.items()
        if len(names) > 1
    }
    return Registry(
        transformers=by_name,
        errors=errors or {},
        aliases={alias: tuple(names) for alias, names in aliases.items()},
        schedules=schedules,
        default=default,
        by_file={t.source: t for t in by_name.values()},
        loaded_at=loaded_at,
    )


def scan_directory(path: str | os.PathLike[str]) -> dict[str, Stamp]:
    """File name -> ``(mtime_ns, size, inode)`` of every transformer file; ``{}`` if unreadable.

    ``os.stat`` follows symlinks, so a ConfigMap ``..data`` swap changes the
    stamps. A file that cannot be stat'ed (a dangling link) gets
    ``(-1, -1, -1)``, so that it appearing and vanishing still count as changes.
    """
    try:
        names = list_transformer_files(path)
    except OSError:
        return {}
    stamps: dict[str, Stamp] = {}
    for name in names:
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            stamps[name] = _UNSTATABLE
        else:
            stamps[name] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return stamps


def build_registry(
    directory: str | os.PathLike[str],
    previous: Registry | None,
    env: Mapping[str, str],
) -> Registry:
    """Read every transformer file of ``directory`` into a new snapshot (blocking I/O).

    Args:
        directory: the transformer directory.
        previous: the snapshot serving now; a file that fails keeps its
            version from here. None on the first load.
        env: where ``${VAR}`` references come from.

    Returns:
        The new snapshot. It never raises for bad files; when the directory
        itself cannot be read, the previous providers keep serving and the
        error is recorded under the directory's name.
    """
    before = previous.by_file if previous is not None else {}
    now = int(time.time())
    try:
        files = load_directory(directory, env)
    except OSError as exc:
        message = f"cannot read the directory ({exc.strerror})"
        return make_registry(before.values(), errors={os.fspath(directory): message}, loaded_at=now)
    assembly = assemble(files, before)
    errors = {
        file: "; ".join(line.removeprefix(f"{file}: ") for line in lines)
        for file, lines in assembly.problems.items()
    }
    return make_registry(assembly.serving.values(), errors=errors, loaded_at=now)


class RegistryHolder:
    """Owns the current snapshot and keeps it in step with the directory.

    Args:
        directory: the transformer directory.
        env: where ``${VAR}`` references come from; ``os.environ`` by default.

    Attributes:
        current: the snapshot to route with; replaced whole by each reload.
        initial_load_done: set once the first load finished (``/health/startup``).
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.current: Registry = Registry.empty()
        self.initial_load_done = trio.Event()
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._counts = {"ok": 0, "error": 0}
        self._lock = trio.Lock()
        self._reload_requested = trio.Event()

    @property
    def reload_counts(self) -> Mapping[str, int]:
        """Result (``"ok"``, ``"error"``) -> number of reloads, for
        ``gateway_transformer_reloads_total{result}``. A copy."""
        return dict(self._counts)

    async def reload(self) -> Registry:
        """Rebuild the snapshot from the directory now, and make it current.

        The files are read in a worker thread. Each failing file is logged on
        the ``gateway.transformers`` logger; a reload with any failure counts
        as ``"error"``.

        Returns:
            The new current snapshot.
        """
        async with self._lock:
            previous = self.current
            new = await trio.to_thread.run_sync(build_registry, self.directory, previous, self._env)
            self.current = new
        self._counts["error" if new.errors else "ok"] += 1
        self._log(previous, new)
        return new

    @staticmethod
    def _log(previous: Registry, new: Registry) -> None:
        for file, message in new.errors.items():
            fallback = file in new.by_file
            logger.error(
                "transformer file %s failed to load: %s (%s)",
                file,
                message,
                "its last good version keeps serving" if fallback else "not serving",
            )
        if new.loaded != previous.loaded or not new.errors:
            logger.info("transformers loaded: %s", ", ".join(new.loaded) or "(none)")

    def request_reload(self) -> None:
        """Ask the poller to reload at once (the SIGHUP handler calls this)."""
        self._reload_requested.set()

    async def run_poller(
        self,
        *,
        poll_interval_s: float,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load once, report started, then reload whenever the directory changes.

        Runs until cancelled. Every ``poll_interval_s`` it compares
        :func:`scan_directory` stamps with the last ones; a difference, or a
        :meth:`request_reload`, triggers :meth:`reload`.
        """
        stamps = await trio.to_thread.run_sync(scan_directory, self.directory)
        await self.reload()
        self.initial_load_done.set()
        task_status.started()
        while True:
            with trio.move_on_after(poll_interval_s):
                await self._reload_requested.wait()
            requested = self._reload_requested.is_set()
            if requested:
                self._reload_requested = trio.Event()
            now = await trio.to_thread.run_sync(scan_directory, self.directory)
            if requested or now != stamps:
                stamps = now
                await self.reload()
