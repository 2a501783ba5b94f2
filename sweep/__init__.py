"""Sweep assembly: a SweepSpec becomes a Ray Tune run over a family's search space.

- `environment.py`: process-wide defaults (quiet, offline-friendly) set before Ray and MLflow load;
- `spec.py`: `SweepSpec`, built from the CLI's flags and the family's options, and its checks;
- `tuner.py`: the Tuner: Optuna searcher and sampler, scheduler, resources, resume;
- `run.py`: `run_sweep`: checks, the parent run, Ray, the Tuner, the end-of-sweep summary;
- `results.py`: a sweep read back from MLflow for `list`, `status`, `best` and `promote`;
- `console.py`: the terminal while a sweep runs (one line per trial event, a live progress line);
- `dashboard.py`: `scenesweep dashboard`, optuna-dashboard on the sweep's study.

The CLI (orchestrator.py) calls these; benchmarks and tests import them, never the CLI.
"""
