"""Speed benchmark: ``python -m mask_age_gender.bench`` (``make bench``); ``__main__.py`` says
what it measures, its options and its JSON."""
