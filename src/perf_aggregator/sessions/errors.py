"""Errors of the session layer (mapped to API codes in ``api.errors``)."""

from __future__ import annotations


class Unauthorized(Exception):
    """Missing or wrong token, or unknown, revoked or expired session: one answer for all."""


class EnvelopeReplayed(Exception):
    """An envelope whose ``enc`` was already accepted (or is being processed)."""


class UnsupportedExchange(Exception):
    """``metadata.exchange`` names an exchange this build cannot read."""


class UnsupportedAccountType(Exception):
    """The exchange is supported but not the requested ``account_type``."""
