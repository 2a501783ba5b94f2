"""The MLP family: end to end, deep features + SVM, patch aggregation, patch BoVW (config `mode`).

- `network.py`: the MLP and its hidden activations;
- `patches.py`: cutting images into patches;
- `stages.py`: second stages after the net (hidden-feature SVM, patch aggregation);
- `patch_bovw.py`: the patch net's activations as dense BoVW descriptors;
- `pipeline.py`: `fit`, dispatching on the mode.
"""

from trainables.mlp.pipeline import fit

__all__ = ["fit"]
