"""Reading a transformer directory safely: which entries count, and only regular files.

A FIFO named ``x.json`` once hung the first load forever: opening a FIFO for
reading blocks until a writer comes, and a device can block or never end. So
only regular files are read (:func:`read_regular_file`), never past a size cap
(:data:`MAX_FILE_BYTES`); anything else is an error naming the file's kind.
Links are followed, so a Kubernetes ConfigMap's ``x.json -> ..data/x.json``
works.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "NotRegularFile", "list_transformer_files", "read_regular_file"]

#: Largest transformer file read. A provider with every OpenRouter model aliased
#: is tens of KiB; the cap keeps a stray multi-gigabyte file from exhausting memory.
MAX_FILE_BYTES = 4 * 1024 * 1024


def list_transformer_files(directory: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the ``*.json`` entries of ``directory``, hidden ones excepted.

    Hidden names are skipped so editor droppings (``.#x.json``) and a
    Kubernetes ConfigMap's ``..data`` machinery are never read as providers.

    Raises:
        OSError: the directory cannot be listed.
    """
    return sorted(n for n in os.listdir(directory) if n.endswith(".json") and n[0] != ".")


class NotRegularFile(OSError):
    """A directory entry that is not a regular file (a FIFO, socket, device, directory)."""


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _not_regular(mode: int) -> NotRegularFile | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return NotRegularFile(f"is {kind}, not a regular file; only regular files are read")


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file.

    A FIFO opened for reading blocks until a writer comes (forever, in a
    directory nobody writes to), and a device can block or never end. So the
    target is checked with ``stat`` (which follows links: a ConfigMap's
    ``x.json -> ..data/x.json`` is fine), opened with ``O_NONBLOCK`` (an open
    FIFO or device then returns at once), and the opened descriptor checked
    again with ``fstat`` (the entry may have been swapped in between). Only a
    regular file is ever read, and never past ``limit``.

    Raises:
        NotRegularFile: it is something else; OSError: it cannot be read.
    """
    problem = _not_regular(os.stat(path).st_mode)
    if problem is not None:
        raise problem
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        problem = _not_regular(os.fstat(fd).st_mode)
        if problem is not None:
            raise problem
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
