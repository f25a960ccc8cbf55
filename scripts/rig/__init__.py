"""The benchmark rig, each module importing only those above it (no cycle); 127.0.0.1 only.

report.py         progress lines, percentiles, tables, targets, the noise warning
procs.py          server processes (ports, readiness, RSS, CPU, stop_all) and Cpu
clients.py        raw HTTP/1.1 clients: SyncClient (c=1), ClientConnection (asyncio)
load.py           our load generator: requests, streams, held streams, cancellations
measure.py        the shared load options, wrk (wrk.lua) or ours, a measured run
stack.py          the mock upstream and gateways in front of it
gw.py             the one module that imports the gateway's internals
mock_upstream.py  a fast mock OpenAI-format provider (a process of its own)
echo_server.py    ``python -m gateway`` plus ``POST /echo`` (a process of its own)
"""
