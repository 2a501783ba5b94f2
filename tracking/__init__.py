"""Tracking: MLflow runs (runs.py), artifacts (artifacts.py), logged models (models.py),
the driver-side Tune callbacks (callback.py closes runs, live.py keeps the parent run current), the
sweep summary (summary.py), the study's plots (study_plots.py), provenance and MLflow conventions
(provenance.py), system metrics (system_metrics.py) and the UI (ui.py)."""
