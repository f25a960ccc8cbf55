"""The edge: who may call the gateway (client keys), which models, and how much (limits)."""
