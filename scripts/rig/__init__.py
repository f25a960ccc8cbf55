"""The benchmark rig: what every benchmark in scripts/benchmarks/ stands on.

Layers, each importing only the ones above it (no cycle):

    report.py        note(), percentile(), tables, targets (Verdict), the noise warning
    procs.py         Proc: a server process in its own group; ports, readiness, RSS, stop_all()
    cpu.py           Cpu: CPU seconds of some processes, of us and of the whole machine
    clients.py       raw HTTP/1.1 clients: SyncClient (c=1) and ClientConnection (asyncio)
    load.py          our load generator on ClientConnection (requests, streams, held streams,
                     cancellations) and LoadResult, what every request generator returns
    wrk.py           the wrk driver (a Lua done() prints exact percentiles as JSON)
    measure.py       the shared load options; run_load() picks wrk or ours; a measured run
                     with CPU per process
    stack.py         Stack: the mock upstream and gateways in front of it
    gw.py            the one module that imports the gateway's internals
    mock_upstream.py a fast mock OpenAI-format provider (a process of its own)
    echo_server.py   ``python -m gateway`` plus ``POST /echo`` (a process of its own)

All load goes to 127.0.0.1: the clients take a port, never a host.
"""
