"""``Idempotency-Key`` on the API's commands, through drf-idempotency (database backend:
the same key with the same request replays the first answer, byte for byte, without
running the command again; the same key with another request is a 422; a second request
while the first runs is a 409)."""

from __future__ import annotations

from functools import wraps

from drf_idempotency import idempotent
from drf_spectacular.utils import OpenApiParameter

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[A-Za-z0-9._~:-]+$", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Optional: a retry with the same key and body replays the first answer "
    "(letters, digits and -._~: only, at most 255; otherwise 400).",
)


def idempotent_command(handler):
    """``drf_idempotency.idempotent`` on a DRF handler. The package stores the response
    for replay by rendering it, which a DRF ``Response`` can only do once the view has
    chosen its renderer, so the handler's response is finalized first."""

    @idempotent()
    @wraps(handler)
    def run(self, request, *args, **kwargs):
        response = handler(self, request, *args, **kwargs)
        return self.finalize_response(request, response, *args, **kwargs)

    return run
