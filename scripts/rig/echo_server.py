"""``python -m gateway`` plus ``POST /echo`` (answering the body as it came), for the server
benchmark: the gateway has no echo endpoint and must not grow one. The real ``main()``
(flags, settings, logging, app, signals) with ``gateway.app.App`` replaced by a subclass
adding that route; one process per worker, each with ``--worker-id I``.
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
