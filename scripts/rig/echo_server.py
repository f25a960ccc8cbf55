"""``python -m gateway`` with one extra route, ``POST /echo``, for the server benchmark.

The gateway has no echo endpoint (and must not grow a placeholder one), so the
POST benchmark serves this instead. It is the real command line, the gateway's
``main()``, unchanged: the same flags, settings (defaults < ``--config`` <
``GATEWAY_*`` environment < flags), logging through ``setup_logging`` (access
lines on stderr: the benchmark sends them to a file), ``gateway.app.run`` with
its transformer registry, metrics observer, signals and graceful shutdown. The
one difference: before it starts, ``gateway.app.App`` is replaced by a
subclass whose routes add ``POST /echo``, answering the request body as it came
(``await ex.respond(200, body)``).

One process per worker: give each ``--worker-id I`` (as the supervisor does
for ``--workers N``) and they share the port with SO_REUSEPORT.

    PYTHONPATH=scripts python -m rig.echo_server serve --host 127.0.0.1 --port 8081 \\
        --transformers EMPTY_DIR [--worker-id 0] 2>access.log
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rig.gw import Route, app_module, gateway_main


class EchoApp(app_module.App):
    """The gateway's App plus ``POST /echo``."""

    def routes(self) -> list[Route]:
        return [*super().routes(), Route("POST", "/echo", self.echo)]

    async def echo(self, ex: Any) -> None:
        await ex.respond(200, ex.request.body)


def main(argv: Sequence[str] | None = None) -> int:
    app_module.App = EchoApp  # run() builds its App from this module global
    return gateway_main(argv)


if __name__ == "__main__":
    sys.exit(main())
