"""Opening credential envelopes into typed, secret-hiding objects (API.md submit_key)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import rfc8785

from perf_aggregator.clock import now_ms
from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.protocol import CREDENTIALS_INFO
from perf_aggregator.tee.keys import EnclaveKeys, EnvelopeOpenError

AccountType = Literal["spot", "futures"]
DEFAULT_HISTORY_MS = 90 * 24 * 3600 * 1000


class EnvelopeError(Exception):
    """The envelope cannot be opened or does not belong to its metadata (``invalid_envelope``)."""


class MetadataError(Exception):
    """``metadata`` has no RFC 8785 canonical form, so it cannot be the AAD (``invalid_request``).

    Messages never quote the metadata.
    """


class CredentialsFormatError(Exception):
    """The opened plaintext is not the credentials document of API.md (``invalid_request``).

    Messages name the offending field, never its value.
    """


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    """Decrypted exchange credentials; they exist only in enclave memory."""

    exchange: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str | None = field(repr=False)
    account_type: AccountType
    since_ms: int
    symbols: tuple[str, ...]


def open_credentials(
    keys: EnclaveKeys,
    enc: bytes,
    ciphertext: bytes,
    metadata: dict[str, Any],
    at_ms: int | None = None,
) -> ExchangeCredentials:
    """Open an envelope whose AAD is the canonical JSON of ``metadata`` and parse the plaintext."""
    try:
        aad = rfc8785.dumps(metadata)
    except rfc8785.CanonicalizationError:
        # Integers beyond +-(2**53 - 1), non-finite floats, lone surrogates.
        raise MetadataError("metadata has no RFC 8785 canonical form") from None
    try:
        plaintext = keys.open(enc, ciphertext, CREDENTIALS_INFO, aad)
    except EnvelopeOpenError as exc:
        raise EnvelopeError("the envelope cannot be opened with this enclave's key and metadata") from exc
    try:
        doc = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CredentialsFormatError("the decrypted credentials are not JSON") from None
    finally:
        del plaintext
    if not isinstance(doc, dict):
        raise CredentialsFormatError("the decrypted credentials are not a JSON object")
    if doc.get("exchange") != metadata.get("exchange"):
        raise EnvelopeError("the exchange inside the envelope differs from metadata.exchange")
    return _parse(doc, now_ms() if at_ms is None else at_ms)


def _parse(doc: dict[str, Any], now_ms: int) -> ExchangeCredentials:
    def text(name: str, required: bool) -> str | None:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value or len(value) > 4096:
            raise CredentialsFormatError(f"credentials field '{name}' must be a non-empty string")
        return value

    api_key = text("api_key", True)
    api_secret = text("api_secret", True)
    passphrase = text("passphrase", False)
    account_type: AccountType
    match doc.get("account_type") or "spot":
        case "spot":
            account_type = "spot"
        case "futures":
            account_type = "futures"
        case _:
            raise CredentialsFormatError("credentials field 'account_type' must be 'spot' or 'futures'")
    since_raw = doc.get("since")
    if since_raw is None:
        since_ms = now_ms - DEFAULT_HISTORY_MS
    else:
        try:
            since_ms = parse_rfc3339(since_raw) if isinstance(since_raw, str) else -1
        except ValueError:
            since_ms = -1
        if since_ms < 0 or since_ms > now_ms:
            raise CredentialsFormatError(
                "credentials field 'since' must be an RFC 3339 time with offset, not in the future"
            )
    symbols_raw = doc.get("symbols") or []
    if (
        not isinstance(symbols_raw, list)
        or len(symbols_raw) > 200
        or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in symbols_raw)
    ):
        raise CredentialsFormatError("credentials field 'symbols' must be a list of market symbols")
    assert api_key is not None and api_secret is not None
    return ExchangeCredentials(
        exchange=str(doc["exchange"]),
        api_key=api_key,
        api_secret=api_secret,
        passphrase=passphrase,
        account_type=account_type,
        since_ms=since_ms,
        symbols=tuple(dict.fromkeys(symbols_raw)),
    )
