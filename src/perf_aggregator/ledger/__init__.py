"""Normalized trades, their USD valuation, FIFO pairing and the per-session ledger."""
