"""Trainables: data, the family registry, and one module per family with `fit(config, dataset, session)`.

`run_trial` (the function Ray Tune runs) is re-exported lazily: a served model
imports `trainables.<family>` and must not need Ray to do so.
"""


def __getattr__(name):
    if name in ("run_trial", "TrialSettings"):
        from trainables import trial

        return getattr(trial, name)
    raise AttributeError(f"module 'trainables' has no attribute {name!r}")
