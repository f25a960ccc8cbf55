"""HTTPS with --tls-cert/--tls-key, through a real gateway process."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time

import httpx
import pytest
import trustme

from tests.process import run_gateway


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_https_serves_with_the_given_certificate(tmp_path, ca):
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    with run_gateway(
        tmp_path, "--tls-cert", str(cert_file), "--tls-key", str(key_file), ready=False
    ) as gw:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        url = f"https://127.0.0.1:{gw.port}/health/live"
        with httpx.Client(verify=context) as client:
            for _ in range(200):
                try:
                    reply = client.get(url)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert reply.status_code == 200
            assert reply.json() == {"status": "live"}
            assert client.get(url).status_code == 200  # keep-alive over TLS
        # A plain-HTTP client gets nothing sensible, and the server keeps serving.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{gw.port}/health/live", timeout=5)
        with httpx.Client(verify=context) as client:
            assert client.get(url).status_code == 200
        assert "listening on https://" in gw.log()
        assert gw.terminate() == 0


def test_unreadable_certificate_is_a_clear_start_up_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "--port",
            "0",
            "--tls-cert",
            str(tmp_path / "no.pem"),
            "--tls-key",
            str(tmp_path / "no.key"),
            "--transformers",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot load the TLS certificate" in result.stderr
    assert "Traceback" not in result.stderr


def test_cert_without_key_is_a_settings_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--tls-cert", "x.pem"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "set both for HTTPS" in result.stderr
