"""What a verifier accepts: TEE types, code measurements and data origins."""

from __future__ import annotations

import re
from dataclasses import dataclass

TEE_TYPES = frozenset({"simulated", "tdx", "sev-snp", "sgx", "dstack"})

# The exchanges' public REST origins; anything else (e.g. an operator's
# PERF_AGG_EXCHANGE_URL_* override pointing at a simulator) is refused by default.
DEFAULT_DATA_SOURCES = frozenset(
    {
        "https://api.binance.com",
        "https://fapi.binance.com",
        "https://api.coinbase.com",
        "https://api.kraken.com",
    }
)

_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class VerificationPolicy:
    """The verifier's choices.

    ``simulated`` evidence proves nothing, so it is refused unless
    ``allow_simulated`` is set, even when listed in ``accepted_tees``.
    ``measurements`` lists accepted code identities as hex (empty: any).
    """

    allow_simulated: bool = False
    accepted_tees: frozenset[str] = TEE_TYPES
    measurements: frozenset[str] = frozenset()
    allowed_data_sources: frozenset[str] = DEFAULT_DATA_SOURCES

    def __post_init__(self) -> None:
        # Documents carry lower-case hex; normalise here so a pasted upper-case
        # measurement still matches, and refuse typos instead of matching nothing.
        measurements = frozenset(m.lower() for m in self.measurements)
        bad = sorted(m for m in measurements if not _HEX.match(m))
        if bad:
            raise ValueError(f"policy measurements must be hex strings: {bad}")
        unknown = sorted(self.accepted_tees - TEE_TYPES)
        if unknown:
            raise ValueError(f"unknown TEE types in policy: {unknown}")
        object.__setattr__(self, "measurements", measurements)
