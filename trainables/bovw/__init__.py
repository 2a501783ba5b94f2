"""The bag-of-visual-words family: descriptors -> codebook/GMM -> encoding + pyramid -> normalisation,
PCA/LDA -> kNN/SVM/logistic, scored by stratified k-fold cross-validation.

- `descriptors.py`: SIFT, dense SIFT, DAISY, ORB (RootSIFT, colour variants);
- `cache.py`: the descriptor cache (disk + a Ray actor) shared by trials;
- `encoding.py`: histogram, Fisher and VLAD encodings over a spatial pyramid;
- `classifiers.py`: normalisation, reduction and the classifiers, as sklearn pipelines;
- `pipeline.py`: `fit`, the whole pipeline as one trial.
"""

from trainables.bovw.pipeline import fit

__all__ = ["fit"]
