"""A gateway in the test's nursery with settings of the test's choice (CORS, audit log, ...).

``tests.proxy.fakes.start_gateway`` serves the default settings; the CORS and
audit-log tests need ``[cors]``, ``[logging]`` and ``[auth]`` values, so the
Config is given here.
"""

from __future__ import annotations

from pathlib import Path

import trio

from gateway.config import Config
from tests.proxy.fakes import Gateway, start_gateway, write_transformer

PROVIDER_KEY = "sk-provider-key-123456789"
ENV = {"UP_KEY": PROVIDER_KEY}


def three_formats(directory: Path, url: str) -> None:
    """An openai, an anthropic and a gemini provider at the fake ``url``: models m-o, m-a, m-g."""
    for fmt, base, model in (
        ("openai", "/v1", "m-o"),
        ("anthropic", "/v1", "m-a"),
        ("gemini", "/v1beta", "m-g"),
    ):
        write_transformer(
            directory,
            f"up-{fmt}",
            {
                "format": fmt,
                "base_url": url + base,
                "keys": ["${UP_KEY}"],
                "models": {model: "up-model"},
                "retry": {"retries": 0},
            },
        )


async def start_configured(
    nursery: trio.Nursery, directory: Path, config: Config, env: dict[str, str] | None = None
) -> Gateway:
    """The gateway of ``config`` (its server bound to 127.0.0.1, any port) in ``nursery``."""
    return await start_gateway(nursery, directory, ENV if env is None else env, config=config)
