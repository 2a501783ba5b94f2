"""--enqueue FILE.json: the user's own configurations, run first (before the paper's)."""

from __future__ import annotations

import json
from pathlib import Path

from sweep.errors import UsageError


def read_enqueue(path: str, *, space: str) -> list[dict]:
    """--enqueue FILE.json: one configuration or a list of them, each {parameter: value} of the space."""
    from search_spaces import contains, describe, parameter_distributions

    file = Path(path).expanduser()
    try:
        raw = json.loads(file.read_text())
    except OSError as exc:
        raise UsageError(f"--enqueue {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--enqueue {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    configs = [raw] if isinstance(raw, dict) else raw
    if not isinstance(configs, list) or not configs or not all(isinstance(c, dict) for c in configs):
        raise UsageError(f"--enqueue {path}: expected a JSON object or a list of objects, one per configuration")
    known = parameter_distributions(space)
    family = space.rsplit(".", 1)[-1]
    for config in configs:
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise UsageError(
                f"--enqueue {path}: {family} has no parameter {unknown[0]!r}; it has {', '.join(sorted(known))}"
            )
        for name, value in config.items():
            if not contains(known[name], value):  # what enqueue_trial can replay
                raise UsageError(
                    f"--enqueue {path}: {name}={value!r} is outside the searched space ({describe(known[name])}); "
                    f"to run it, pin it with --fix {name}={value}"
                )
    return configs
