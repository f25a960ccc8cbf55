"""One module per ``scripts/bench.py`` subcommand, each giving a ``COMMAND``, and workloads.py."""
