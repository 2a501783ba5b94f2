"""search_spaces.contains: is a value one a distribution can suggest (every distribution type, inside and outside)."""

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search_spaces import contains

FLOAT = FloatDistribution(0.1, 1.0)
FLOAT_LOG = FloatDistribution(1e-4, 1e-1, log=True)
FLOAT_STEP = FloatDistribution(0.0, 1.0, step=0.25)
INT = IntDistribution(2, 5)
INT_LOG = IntDistribution(1, 64, log=True)
INT_STEP = IntDistribution(16, 64, step=16)
CHOICES = CategoricalDistribution(["adam", "sgd", None, True])

CASES = [
    (FLOAT, 0.1, True),
    (FLOAT, 1.0, True),
    (FLOAT, 0.5, True),
    (FLOAT, 1, True),  # an int is a number in a float range
    (FLOAT, np.float64(0.3), True),
    (FLOAT, 1.01, False),
    (FLOAT, 0.0, False),
    (FLOAT, "0.5", False),  # a string that looks like a number is not one
    (FLOAT, True, False),
    (FLOAT, float("nan"), False),
    (FLOAT, None, False),
    (FLOAT_LOG, 1e-3, True),
    (FLOAT_LOG, 1e-5, False),
    (FLOAT_LOG, 0.2, False),
    (FLOAT_STEP, 0.75, True),
    (FLOAT_STEP, 0.7, False),  # off the step
    (FLOAT_STEP, 1.25, False),
    (INT, 2, True),
    (INT, 5, True),
    (INT, 3.0, True),  # a whole float is that integer
    (INT, 3.5, False),
    (INT, 6, False),
    (INT, 1, False),
    (INT, np.int64(4), True),
    (INT, False, False),
    (INT_LOG, 64, True),
    (INT_LOG, 0, False),
    (INT_STEP, 48, True),
    (INT_STEP, 40, False),  # off the step
    (INT_STEP, 80, False),
    (CHOICES, "adam", True),
    (CHOICES, None, True),
    (CHOICES, True, True),
    (CHOICES, "rmsprop", False),
    (CHOICES, 0.5, False),
    (CHOICES, ["adam"], False),
]


@pytest.mark.parametrize(
    ("distribution", "value", "inside"), CASES, ids=[f"{type(d).__name__}-{v!r}" for d, v, _ in CASES]
)
def test_a_value_is_inside_a_distribution_only_when_it_could_be_suggested(distribution, value, inside):
    assert contains(distribution, value) is inside
