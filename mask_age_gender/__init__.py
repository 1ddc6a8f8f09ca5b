"""Face photos by mask state, gender and age group: PyTorch Lightning + Hydra (see README)."""

import os

# albumentations asks PyPI for a newer version when imported, unless told not to: nothing here
# reaches the network at run time (an offline machine would wait on it). A user's own setting
# stands.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
