"""What a run leaves behind, read back: error analysis, plots, ledger, label audit, ensembles."""
