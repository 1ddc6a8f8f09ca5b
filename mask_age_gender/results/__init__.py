"""What runs leave behind: a finished run's summary and error analysis, plots, the ledger and
its groups with intervals, the label audit; read back for the notebook."""
