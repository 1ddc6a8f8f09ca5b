"""The engine behind ``predict``: checkpoints back as models, class probabilities (with
TTA), ensembles and submissions."""
