"""Issue 8 item 14: accept() out of file descriptors backs off and logs once a second.

EMFILE at accept was logged 600 times a minute. The accept loop now sleeps
between tries and reports at most once per second, with a count of failures;
when descriptors free up, clients are served again. Tested by injecting the
error, and in a subprocess with a low RLIMIT_NOFILE.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import subprocess
import sys
import time

import httpx
import pytest
import trio

from gateway.server.listen import open_listeners
from tests.process import GatewayProcess, free_port
from tests.server.helpers import Probe, make_server


class FailingListener:
    """A real listener whose accept() fails with ``code`` while ``failing``."""

    def __init__(self, listener: trio.SocketListener, code: int) -> None:
        self.listener = listener
        self.socket = listener.socket
        self.code = code
        self.failing = True
        self.failures = 0

    async def accept(self) -> trio.SocketStream:
        if self.failing:
            await trio.lowlevel.checkpoint()
            self.failures += 1
            raise OSError(self.code, "injected")
        return await self.listener.accept()

    async def aclose(self) -> None:
        await self.listener.aclose()


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
async def test_accept_errors_back_off_and_log_once_a_second(nursery, caplog, code):
    caplog.set_level(logging.INFO, logger="gateway.server")
    server = make_server(Probe())
    [real] = await open_listeners("127.0.0.1", 0)
    listener = FailingListener(real, code)
    port = (await nursery.start(server.serve, [listener]))[0][1]
    await trio.sleep(2.5)
    lines = [r for r in caplog.records if "accept() failed" in r.getMessage()]
    assert 10 <= listener.failures <= 40  # backed off ~0.1 s each, not a busy loop
    assert 1 <= len(lines) <= 4  # once a second at most
    assert errno.errorcode[code] in lines[0].getMessage()
    listener.failing = False
    async with httpx.AsyncClient() as client:
        with trio.fail_after(5):
            reply = await client.get(f"http://127.0.0.1:{port}/hello")
    assert reply.status_code == 200


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_NOFILE semantics")
def test_a_process_out_of_descriptors_keeps_its_log_quiet(tmp_path):
    limit = 64
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < limit:
        pytest.skip("hard limit too low")
    port = free_port()
    empty = tmp_path / "transformers"
    empty.mkdir()
    log_path = tmp_path / "gateway.log"
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {hard})); "
        f"sys.argv = ['gateway', '--host', '127.0.0.1', '--port', '{port}', "
        f"'--transformers', {str(empty)!r}]; "
        "runpy.run_module('gateway', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out, env=env)
    gw = GatewayProcess(proc, port, log_path)
    held: list[socket.socket] = []
    try:
        gw.wait_ready()
        for _ in range(limit + 10):  # more connections than the process has descriptors
            held.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(3)
        log = gw.log()
        for sock in held:
            sock.close()
        failures = [line for line in log.splitlines() if "accept() failed" in line]
        assert 1 <= len(failures) <= 5, log[-2000:]
        assert "EMFILE" in failures[0]
        # descriptors are back: it serves again
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(gw.url + "/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, gw.log()[-2000:]
            time.sleep(0.2)
    finally:
        for sock in held:
            sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
