"""Speed benchmark: ``python -m mask_age_gender.bench [options]`` (``make bench``).

For one model, batch size, image size and thread count it measures, in images per second:
the model alone on batches already in memory (the ceiling), the configured DataLoader alone,
the real training (DataModule + LightningModule + Trainer, steady state), a plain PyTorch loop
in the style of the competition's baseline, and prediction; plus the training run's peak
memory and a comparison of JPEG decoders; with ``--breakdown`` one training step in parts
(``breakdown.py``). Several models, batch sizes or compile modes make a ladder of model-only
and training figures instead (``ladder.py``). See ``__main__.py`` for the options and the JSON.
"""
