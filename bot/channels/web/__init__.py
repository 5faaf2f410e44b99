"""The web chat channel: rate limiting, request limits, visitor binding and SSE streaming for `/api/`."""
