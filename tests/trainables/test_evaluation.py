"""The test evaluation every trial records, computed with numpy, matches scikit-learn's."""

import numpy as np
import pytest
from sklearn.metrics import classification_report as sklearn_report
from sklearn.metrics import confusion_matrix as sklearn_confusion

from trainables.core.classifier import classification_report, confusion_counts

NAMES = ["coast", "forest", "highway", "street"]


@pytest.mark.parametrize(
    "labels, predictions",
    [
        (np.random.default_rng(0).integers(0, 4, 200), np.random.default_rng(1).integers(0, 4, 200)),
        (np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 0, 0, 0])),  # classes never predicted: zero division
        (np.array([0, 1, 1, 1]), np.array([0, 1, 1, 2])),  # a class with no test image (support 0)
    ],
)
def test_confusion_and_report_match_scikit_learn(labels, predictions):
    classes = list(range(len(NAMES)))
    confusion = confusion_counts(labels, predictions, len(NAMES))
    assert confusion.tolist() == sklearn_confusion(labels, predictions, labels=classes).tolist()
    ours = classification_report(confusion, NAMES)
    theirs = sklearn_report(labels, predictions, labels=classes, target_names=NAMES, output_dict=True, zero_division=0)
    assert ours.keys() == theirs.keys()
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    for name in [*NAMES, "macro avg", "weighted avg"]:
        assert ours[name] == pytest.approx(theirs[name]), name
        assert type(ours[name]["precision"]) is float and type(ours[name]["support"]) is int
