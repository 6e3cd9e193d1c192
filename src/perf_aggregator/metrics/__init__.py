"""Figures, statistics and API documents computed from the ledger's running accumulators."""
