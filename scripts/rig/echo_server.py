"""``python -m gateway`` with one extra route, ``POST /echo``, for the server benchmark.

The gateway has no echo endpoint (and must not grow one), so the POST benchmark serves
this: the real ``main()`` (flags, settings, logging, ``gateway.app.run`` with its
registry, observer, signals and graceful shutdown), its ``App`` replaced by a subclass
whose routes add ``POST /echo``, answering the request body as it came. One process per
worker: each gets ``--worker-id I`` (as the supervisor's workers do) to share the port.

    PYTHONPATH=scripts python -m rig.echo_server serve --port 8081 --transformers EMPTY_DIR
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rig.gw import Route, app_module, gateway_main


class EchoApp(app_module.App):
    def routes(self) -> list[Route]:
        return [*super().routes(), Route("POST", "/echo", self.echo)]

    async def echo(self, ex: Any) -> None:
        await ex.respond(200, ex.request.body)


def main(argv: Sequence[str] | None = None) -> int:
    app_module.App = EchoApp  # run() builds its App from this module global
    return gateway_main(argv)


if __name__ == "__main__":
    sys.exit(main())
