"""The stack the proxy and convert benchmarks measure: the mock upstream and gateways.

In a temporary directory: the mock OpenAI-format upstream, a transformer directory with
one openai-format provider in front of it (no keys, ``"*": "*"``, no retries, default),
and the real ``python -m gateway`` (1 worker, default settings: access lines on) on it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.procs import HOST, Proc, copy_logs, free_port, http_request, wait_ready


@dataclass
class Stack:
    tmp: Path
    upstream: Proc
    upstream_port: int
    gateways: list[Proc] = field(default_factory=list)

    def start_gateway(
        self, label: str = "gateway", args: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> tuple[Proc, int]:
        """``python -m gateway`` on a free port with ``args`` added (``--config FILE``) and
        ``env`` added to ours (the variables its settings name), ready."""
        port = free_port()
        cmd = [sys.executable, "-m", "gateway", "--transformers", str(self.tmp / "transformers")]
        cmd += ["--host", HOST, "--port", str(port), *args]
        log = self.tmp / f"gateway-{len(self.gateways)}.log"
        proc = Proc(f"python -m gateway ({label})", cmd, log, env)
        self.gateways.append(proc)
        wait_ready([proc], port, "/health/ready", log_marker=b"listening on", markers=1)
        return proc, port

    def upstream_json(self, path: str) -> Any:
        """``GET path`` of the mock upstream (``/_bench/cancels``, ``/_bench/stats``)."""
        status, body = http_request(self.upstream_port, "GET", path, timeout=10)
        if status != 200:
            raise RuntimeError(f"the mock upstream answered {status} to GET {path}")
        return json.loads(body)


def start_upstream(log: Path) -> tuple[Proc, int]:
    """The mock upstream on a free port, ready."""
    port = free_port()
    cmd = [sys.executable, "-m", "rig.mock_upstream", "--port", str(port)]
    proc = Proc("mock upstream", cmd, log)
    wait_ready([proc], port, "/health")
    return proc, port


@contextlib.contextmanager
def stack(prefix: str, keep_logs: str | None = None) -> Iterator[Stack]:
    """The mock upstream and its transformer file; every process stopped on the way out,
    their logs copied to ``keep_logs``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpname:
        tmp = Path(tmpname)
        rig = Stack(tmp, *start_upstream(tmp / "upstream.log"))
        try:
            (tmp / "transformers").mkdir()
            spec = {"name": "bench", "format": "openai",
                    "base_url": f"http://{HOST}:{rig.upstream_port}/v1", "models": {"*": "*"},
                    "retry": {"retries": 0, "backoff_s": 0}, "default": True}  # fmt: skip
            (tmp / "transformers" / "bench.json").write_text(json.dumps(spec, indent=2))
            yield rig
        finally:
            copy_logs(tmp, keep_logs)
            for proc in [*rig.gateways, rig.upstream]:
                proc.stop()
