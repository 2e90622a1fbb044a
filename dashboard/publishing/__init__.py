"""The publishing engine: validate, pick a provider client or a simulator, call, record."""
