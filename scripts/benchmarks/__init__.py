"""One module per ``scripts/bench.py`` subcommand, each giving a ``COMMAND``.

server.py         the HTTP server alone vs nginx (issue 2)
proxy.py          the gateway in front of a mock upstream vs the upstream alone (issue 3)
convert.py        format conversion end to end (issue 4), and its report
convert_micro.py  format conversion in process, per direction
transport.py      httpx's default transport vs PooledTransport, client side
workloads.py      the convert benchmark's request, answer and stream bodies
"""
