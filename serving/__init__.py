"""Serving a trial's model: the MLflow pyfunc wrapper, logging a classifier as a model, loading a
model by URI, prediction on image files, the HTTP scoring server, and Grad-CAM explanations.

Used by trials (logging the model) and by the CLI's after-sweep commands. The pyfunc model that
MLflow loads needs only `serving` and `trainables` (shipped with the model as code).
"""
