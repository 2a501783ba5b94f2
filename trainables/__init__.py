"""Trainables: what a trial trains.

- `trial.py`: `run_trial`, the function Ray Tune runs (family-agnostic), and
  `fit_and_evaluate`, the same training without Tune or tracking.
- `families.py`: the family registry.
- `core/`: what every family shares: data loading, the classifier contract, the
  torch training loop, device and precision, augmentation, the trial session.
- one module or package per family: `tinynet.py`, `inception.py`, `mlp/`, `bovw/`,
  each with `fit(config, dataset, session) -> SceneClassifier`.

Families use `core`, never the reverse.
"""
