"""The engine behind ``predict`` (and a training run's own predictions).

- ``checkpoints``: a checkpoint back as a model; the checks that an ensemble's fit.
- ``proba``: the one prediction path (Lightning's ``Trainer.predict``, with flip TTA) and the
  loader of a checkpoint's photos.
- ``ensemble``: soft and hard voting, the checkpoints of a sweep, each one's validation people.
- ``prediction``: what ``predict`` writes for ``split=eval|val|oof``: the submission and the
  prediction tables.
"""
