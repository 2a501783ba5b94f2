"""Serve a scenesweep model over HTTP with MLflow's own scoring server."""

from __future__ import annotations


def serve(model, *, host: str, port: int) -> None:
    """Serve `model` with MLflow's own scoring server: the app `mlflow models serve` runs under uvicorn.

    Same endpoints (/invocations, /ping, /health, /version) and request formats
    (dataframe_split, dataframe_records, inputs; binary columns as base64).
    """
    import uvicorn
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(model)
    uvicorn.run(app, host=host, port=port, log_level="info")  # startup line and one access line per request
