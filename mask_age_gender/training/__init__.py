"""Around the fit: run assembly, EMA, status and resume on disk, signals, DDP, config resolvers."""
