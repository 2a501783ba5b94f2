"""The shared training core: data, the classifier contract, the torch loop, device, augmentation,
and the trial session. Families build on it; it imports no family."""
