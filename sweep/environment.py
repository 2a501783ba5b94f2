"""Process-wide defaults for a sweep's driver, set before Ray and MLflow read them."""

from __future__ import annotations

import os

DEFAULTS = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "RAY_DEDUP_LOGS": "1",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # No CSV/JSON/TensorBoard result files per trial (and no TensorBoard hint): MLflow has every result.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Tune's older output engine is the one that stays silent at verbose=0 (the newer one prints a
    # configuration table whatever the verbosity); sweep.console prints the trial events instead.
    "RAY_AIR_NEW_OUTPUT": "0",
    # A tracking-server outage is ridden out: each MLflow HTTP call retries with exponential backoff
    # (0, 4, 8, ... capped at 120 s; about 4 minutes in all), then fails the trial, which Tune retries.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}
# What remote workers need from the driver's environment: credentials reach them this way, never
# through params or tags.
FORWARDED = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "MLFLOW_LOGGING_LEVEL",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


def configure_environment() -> None:
    """Set each default the user has not set (idempotent)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def forwarded_environment() -> dict:
    return {name: os.environ[name] for name in FORWARDED if name in os.environ}
