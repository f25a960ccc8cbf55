"""Limits, budgets, the usage ledger and provider-key rests: local, or shared through Redis."""
