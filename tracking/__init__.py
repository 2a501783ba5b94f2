"""Tracking: MLflow runs (runs.py), artifacts (artifacts.py), logged models (models.py),
the driver-side Tune callback (callback.py) and the sweep summary (summary.py)."""
