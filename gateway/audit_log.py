"""The audit log's writer: lines to a file off the event loop, rotated by size, reopened on SIGHUP.

Theory of operation. The app's observer of finished requests hands each record
to :meth:`AuditLog.observe`, which makes the line (gateway.audit, a few µs)
and appends it to a :class:`~gateway.logs.LineWriter`, the access log's
batching machinery: a deque drained by one thread every 20 ms, one ``write``
per batch, so the event loop never touches the file. Past the writer's bound
lines are dropped and counted (``gateway_log_records_dropped_total``); the
bound is 100,000 lines, or 256 with ``log_bodies`` (a line may then hold two
64 KiB bodies: 256 keeps the queue in tens of MB).

The writer's stream is a :class:`RotatingFile`, used by that thread only:

- opened ``O_APPEND`` and created with mode 0600 (the umask may narrow it):
  request metadata is for the operator's eyes;
- before a batch would take the file past ``audit_max_bytes``, the lines that
  still fit are written and the file is rotated (``audit.log`` ->
  ``audit.log.1`` -> ... -> ``.<audit_backups>``, the oldest deleted; with 0
  backups the full file is deleted): a line is never split between files, and
  a single line longer than the limit goes alone into a fresh file;
- ``--workers N`` share the file: each append is one ``write`` of whole lines
  (``O_APPEND`` keeps them whole), the size is the file's own (``fstat``), and
  rotation happens under an exclusive ``flock`` of the file being rotated, after
  checking that it is still the one at the path: a worker that finds it was
  rotated by another just reopens. Before each batch the writer checks that its
  file is still at the path (one ``stat``), so it follows another worker's
  rotation, a logrotate that moved the file, or a deleted file, at once;
- :meth:`AuditLog.reopen` (SIGHUP, app.py) makes the next batch reopen the
  path (logrotate's ``postrotate`` convention);
- a write that fails (disk full, directory gone, no permission) is logged once
  at error, the batch counted as dropped, and the next batch tries again
  (reopening); the first batch that gets through logs that writing resumed.
  Requests never see any of it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.audit import audit_line
from gateway.logs import LineWriter, redact_line
from gateway.redact import Redactor

if TYPE_CHECKING:
    from gateway.config import LoggingConfig
    from gateway.server.exchange import HttpRecord

__all__ = ["AuditLog", "RotatingFile"]

LOG = logging.getLogger("gateway.audit")

#: Audit lines waiting for the writer thread, without and with bodies.
MAX_PENDING = 100_000
MAX_PENDING_WITH_BODIES = 256
FILE_MODE = 0o600
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class RotatingFile:
    """An append-only file rotated by size and reopened on request (see the module doc).

    Every method but :meth:`reopen` is called from the writer thread only.
    """

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._inode = (0, 0)
        self._reopen = False
        self._failing = False

    def reopen(self) -> None:
        """Reopen the path before the next write (any thread: a flag the writer reads)."""
        self._reopen = True

    def write(self, text: str) -> None:
        """Append ``text`` (whole lines); raises OSError, logged once per failing spell."""
        try:
            self._write(text.encode("utf-8"))
        except OSError as exc:
            self.close()
            if not self._failing:
                self._failing = True
                LOG.error(
                    "audit log %s: cannot write (%s); audit lines are dropped until it works",
                    self.path,
                    exc.strerror or exc,
                )
            raise
        if self._failing:
            self._failing = False
            LOG.warning("audit log %s: writing again", self.path)

    def flush(self) -> None:
        """Nothing to do: every write goes straight to the file."""

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _write(self, data: bytes) -> None:
        fd = self._current()
        while data:
            size = os.fstat(fd).st_size
            room = self.max_bytes - size
            if len(data) <= room:
                _write_all(fd, data)
                return
            cut = data.rfind(b"\n", 0, max(room, 0)) + 1  # the whole lines that fit
            if cut == 0 and size == 0:  # a line longer than the limit: alone in a fresh file
                cut = data.find(b"\n") + 1 or len(data)
            if cut:
                _write_all(fd, data[:cut])
                data = data[cut:]
            if data:
                fd = self._rotate(fd)

    def _current(self) -> int:
        """The open file, reopened when asked to or when it is no longer at the path."""
        if self._reopen:
            self._reopen = False
            self.close()
        if self._fd is not None and _inode(self.path) != self._inode:
            self.close()  # rotated by another worker or by logrotate, or deleted
        if self._fd is None:
            fd = os.open(self.path, _OPEN_FLAGS, FILE_MODE)
            st = os.fstat(fd)
            self._fd, self._inode = fd, (st.st_dev, st.st_ino)
        return self._fd

    def _rotate(self, fd: int) -> int:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if _inode(self.path) == self._inode:  # not rotated by another worker meanwhile
                if self.backups == 0:
                    os.unlink(self.path)
                for i in range(self.backups - 1, 0, -1):
                    _replace_if_there(f"{self.path}.{i}", f"{self.path}.{i + 1}")
                if self.backups:
                    os.replace(self.path, f"{self.path}.1")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self.close()
        return self._current()


def _inode(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0)
    return (st.st_dev, st.st_ino)


def _replace_if_there(src: str, dst: str) -> None:
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # never seen on a regular file; rather an error than a spin
            raise OSError(f"write() took none of {len(view)} bytes")
        view = view[written:]


class AuditLog:
    """The audit log of one process: :meth:`observe` each finished request.

    Args:
        path: the file (``logging.audit_log``).
        max_bytes: rotate before the file grows past this (``logging.audit_max_bytes``).
        backups: rotated files kept (``logging.audit_backups``).
        log_bodies: put bodies in the lines (``logging.log_bodies``).
        secrets: client keys to redact beside the provider keys the proxy installs
            in gateway.logs (bodies are the only place a line could carry them).
        skip_paths: paths that are not audited (the health probes, /metrics).
    """

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int,
        backups: int,
        log_bodies: bool = False,
        secrets: Iterable[str] = (),
        skip_paths: Iterable[str] = (),
    ) -> None:
        self.file = RotatingFile(path, max_bytes, backups)
        self.log_bodies = log_bodies
        self._redactor = Redactor(secrets)
        self._skip = frozenset(skip_paths)
        pending = MAX_PENDING_WITH_BODIES if log_bodies else MAX_PENDING
        self._writer = LineWriter(self.file, max_pending=pending, name="gateway-audit-writer")

    @classmethod
    def from_settings(
        cls, settings: LoggingConfig, *, secrets: Iterable[str] = (), skip_paths: Iterable[str] = ()
    ) -> AuditLog | None:
        """The audit log ``[logging]`` asks for, or None when ``audit_log`` is empty."""
        if not settings.audit_log:
            return None
        return cls(
            settings.audit_log,
            max_bytes=settings.audit_max_bytes,
            backups=settings.audit_backups,
            log_bodies=settings.log_bodies,
            secrets=secrets,
            skip_paths=skip_paths,
        )

    @property
    def dropped(self) -> int:
        """Lines lost: the writer fell behind, or the file could not take them."""
        return self._writer.dropped

    def observe(self, record: HttpRecord) -> None:
        """Queue the audit line of a finished request (skipped paths excepted)."""
        if record.target.partition("?")[0] in self._skip:
            return
        line = audit_line(record, now=time.time(), redact=self._redact, bodies=self.log_bodies)
        self._writer.write(line)

    def _redact(self, text: str) -> str:
        return redact_line(self._redactor.text(text))

    def reopen(self) -> None:
        """Reopen the file before the next batch (SIGHUP, after logrotate moved it)."""
        self.file.reopen()

    def close(self) -> None:
        """Write out what is queued, stop the thread and close the file (blocks: a thread)."""
        self._writer.close()
        self.file.close()
