"""The HTTP/1.1 server on h11: connections, limits, shutdown. It knows HTTP, not LLM formats:
the application hands it routes, a dialect per route for its error bodies, and an observer."""
