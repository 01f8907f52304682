"""Cross-cutting pieces of the shop backend: settings, errors, clock, security."""
