"""Around the fit: the parts built from the config, the run context (room, status, DDP job),
resume, the callbacks every run gets, EMA, the progress display."""
