"""Serve a scenesweep model over HTTP with MLflow's own scoring server."""

from __future__ import annotations

import json

# The largest request body `serve` reads: a batch of camera photos as base64 JSON. A larger one is
# refused with 413 before it is read; decoded pixels per image are capped in trainables.core.images.
MAX_REQUEST_BYTES = 64 * 2**20


def serve(model, *, host: str, port: int) -> None:
    """Serve `model` with MLflow's own scoring server: the app `mlflow models serve` runs under uvicorn.

    Same endpoints (/invocations, /ping, /health, /version) and request formats
    (dataframe_split, dataframe_records, inputs; binary columns as base64).
    """
    import uvicorn
    from mlflow.pyfunc import scoring_server

    app = RequestSizeLimit(scoring_server.init(model), limit=MAX_REQUEST_BYTES)
    uvicorn.run(app, host=host, port=port, log_level="info")  # startup line and one access line per request


class RequestSizeLimit:
    """ASGI middleware: 413 for a body declared larger than `limit`, 411 for one of unknown length
    (chunked), so no request makes the server read an unbounded body."""

    def __init__(self, app, *, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is None and headers.get(b"transfer-encoding"):
                return await _refuse(send, 411, "send the request with a Content-Length header")
            if length is not None and int(length) > self.limit:
                return await _refuse(
                    send, 413, f"the request body is {int(length):,} bytes, over the limit of {self.limit:,}"
                )
        return await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
