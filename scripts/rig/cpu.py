"""CPU accounting of a run: the servers', ours and the rest of the machine's.

- servers: user + system time of each :class:`~rig.procs.Proc`'s process group
  (``/proc/PID/stat``), so a supervisor's workers count;
- ``client``: this process and its reaped children (``getrusage``): our own load
  generator, or wrk, which ``subprocess.run`` has reaped by the time a run ends;
- ``other``: what the machine spent busy (``/proc/stat``, less idle and iowait) beyond
  those: other work sharing the cores, the noise the reports warn about.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping, Sequence

from rig.procs import CLK_TCK, Proc


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (not idle, not iowait) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Cpu:
    """Started on creation; :meth:`stop` gives the CPU seconds used since, by name."""

    def __init__(self, procs: Mapping[str, Proc | Sequence[Proc]]) -> None:
        self.procs = {k: [p] if isinstance(p, Proc) else list(p) for k, p in procs.items()}
        self.t0 = time.perf_counter()
        self.proc0 = {k: self._seconds(k) for k in self.procs}
        self.own0 = own_cpu_seconds()
        self.busy0 = machine_busy_seconds()

    def _seconds(self, name: str) -> float:
        return sum(p.cpu_seconds() for p in self.procs[name])

    def stop(self) -> dict[str, float]:
        """Seconds per process name, ``client`` (us), ``other`` (the rest) and ``wall``."""
        wall = time.perf_counter() - self.t0
        out = {k: self._seconds(k) - self.proc0[k] for k in self.procs}
        out["client"] = own_cpu_seconds() - self.own0
        out["other"] = max(0.0, machine_busy_seconds() - self.busy0 - sum(out.values()))
        out["wall"] = wall
        return out
