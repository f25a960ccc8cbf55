"""py-spy on servers of a run (a benchmark's ``--profile DIR``): where their CPU goes.

py-spy (``pip install py-spy``; not a dependency of the project) samples a process's Python
stacks from outside, without pausing it (``--nonblocking``), leaving out samples in which
the process is idle (waiting in ``epoll``), so a share of the samples is a share of its
CPU. :class:`Recorder` starts one ``py-spy record`` per process, in py-spy's raw format
(``frame;frame;... count`` per line: what flamegraph.pl and speedscope read) and stops it
with SIGINT, on which py-spy writes its file. :func:`shares` reads one back: the share of
samples spent in each part of the code (a path fragment such as ``gateway/edge/``), by
the innermost frame of ours in each sample. py-spy's own CPU competes with the servers on
a small machine: a profiled run's figures are not comparable with an unprofiled one's.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from rig.procs import Proc

RATE_HZ = 200
STOP_TIMEOUT_S = 30.0


class Recorder:
    """``py-spy record`` on each of ``procs``, to ``out_dir/<name><suffix>.txt``."""

    def __init__(self, procs: Mapping[str, Proc], out_dir: Path, suffix: str = "") -> None:
        binary = shutil.which("py-spy")
        if binary is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.files = {name: out_dir / f"{name}{suffix}.txt" for name in procs}
        self.spies: list[subprocess.Popen[bytes]] = []
        try:
            for name, proc in procs.items():
                cmd = [binary, "record", "--pid", str(proc.pid), "--rate", str(RATE_HZ),
                       "--format", "raw", "--nonblocking",
                       "--output", str(self.files[name])]  # fmt: skip
                self.spies.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> dict[str, Path]:
        """Stop every recorder (each writes its file); the files written."""
        for spy in self.spies:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for spy in self.spies:
            try:
                spy.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(STOP_TIMEOUT_S)
            if spy.stderr is not None:
                spy.stderr.close()
        self.spies = []
        return {name: path for name, path in self.files.items() if path.exists()}


def shares(path: Path, parts: Mapping[str, str], within: str = "gateway/") -> dict[str, float]:
    """Of the samples in ``path``, the share spent in each of ``parts`` (``{label: path
    fragment}``): a sample counts for the part of its innermost frame in ``within`` (so
    what a part calls outside ``within``, a socket's send or trio's scheduling, is its
    cost, and the parts do not overlap; py-spy may miss a stack's outer frames, never its
    inner ones). ``samples``: how many there were."""
    total, found = 0, dict.fromkeys(parts, 0)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            inner = next((fr for fr in reversed(stack.split(";")) if within in fr), "")
            for label, fragment in parts.items():
                if fragment in inner:
                    found[label] += int(count)
                    break
    return {"samples": float(total), **{k: v / total if total else 0.0 for k, v in found.items()}}
