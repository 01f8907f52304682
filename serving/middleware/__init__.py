"""Pure ASGI middleware: request ids, metrics, limits, security headers."""
