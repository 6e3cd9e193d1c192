"""What a verifier accepts: TEE types, code measurements, TCB levels, evidence age and data origins.

A policy can be kept in a TOML file and read with ``load_policy``. Every key is
optional (a missing key keeps the safe default of ``VerificationPolicy``); an
unknown key is an error, so a typo never silently weakens a policy; relative
paths are relative to the policy file. A complete example::

    # Simulated evidence proves nothing: refuse it (the CLI's --allow-simulated overrides).
    allow_simulated = false
    # TEE types accepted at all ("simulated", "tdx", "sgx", "sev-snp", "dstack").
    accepted_tees = ["tdx", "sgx", "sev-snp", "dstack"]
    # Intel TCB statuses accepted for TDX, SGX and dstack quotes (default: only "UpToDate").
    # Others: "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    # "OutOfDate", "OutOfDateConfigurationNeeded". "Revoked" is never accepted.
    accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
    # Refuse documents whose issued_at is older than this (seconds); absent: no limit.
    max_evidence_age_s = 600
    # Origins the summary figures may have been read from (default: the exchanges' public APIs).
    allowed_data_sources = ["https://api.binance.com", "https://fapi.binance.com"]

    # Intel DCAP collateral for TDX, SGX and dstack quotes: a file (offline) or a PCCS (network).
    [collateral]
    file = "tdx_quote_collateral.json"
    # pccs_url = "https://pccs.example.com"

    # Accepted measurement values, per TEE type and register (lower- or upper-case hex).
    # A register that is absent, or an empty list, accepts any value. (The values below are
    # those of the test fixtures: pin your own image's.)
    [measurements.tdx]
    mrtd = [
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
    ]
    rtmr0 = [
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    ]
    rtmr1 = [
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    ]
    rtmr2 = [
        "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    ]

    [measurements.sgx]
    mrenclave = ["33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"]
    mrsigner = ["815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"]

    [measurements.sev-snp]
    measurement = []

    # AMD certificates for SEV-SNP reports (PEM or DER): the VCEK must be signed by the ASK,
    # the ASK by the ARK, and the ARK by itself. The ARK is the trust anchor: take it from AMD.
    [snp]
    ark = "ark.pem"
    ask = "ask.pem"
    vcek = "vcek.pem"

Registers a policy may pin: ``tdx`` and ``dstack``: ``mrtd``, ``rtmr0`` to
``rtmr3``, ``mrseam``, ``mrconfigid``, ``mrowner``, ``mrownerconfig`` (48 bytes
each); ``sgx``: ``mrenclave``, ``mrsigner`` (32 bytes); ``sev-snp``:
``measurement`` (48), ``host_data`` (32), ``id_key_digest`` (48).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from perf_aggregator.client.errors import PolicyFileError

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

_TDX_REGISTERS = MappingProxyType(
    {
        name: 48
        for name in (
            "mrtd",
            "rtmr0",
            "rtmr1",
            "rtmr2",
            "rtmr3",
            "mrseam",
            "mrconfigid",
            "mrowner",
            "mrownerconfig",
        )
    }
)

MEASUREMENT_REGISTERS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "tdx": _TDX_REGISTERS,
        "dstack": _TDX_REGISTERS,
        "sgx": MappingProxyType({"mrenclave": 32, "mrsigner": 32}),
        "sev-snp": MappingProxyType({"measurement": 48, "host_data": 32, "id_key_digest": 48}),
    }
)
"""Per TEE type, the registers a policy may pin and their size in bytes."""

TCB_STATUSES = frozenset(
    {
        "UpToDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
    }
)
"""Intel TCB statuses a policy may accept (``Revoked`` and ``Unknown`` never are)."""

_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class VerificationPolicy:
    """The verifier's choices.

    ``simulated`` evidence proves nothing, so it is refused unless
    ``allow_simulated`` is set, even when listed in ``accepted_tees``.
    ``measurements`` lists accepted code identities as hex (empty: any); it is
    matched against the document's main measurement whatever the TEE (MRTD,
    MRENCLAVE, SNP MEASUREMENT, simulated measurement).
    ``tee_measurements`` pins registers per TEE type:
    ``{"tdx": {"mrtd": {...}, "rtmr0": {...}}, "sgx": {"mrenclave": {...}}}``;
    a register that is absent or has no values accepts any value (see
    ``MEASUREMENT_REGISTERS`` for the names).
    ``accepted_tcb_statuses`` are the Intel TCB statuses accepted for DCAP
    quotes (TDX, SGX, dstack); default only ``UpToDate``.
    ``max_evidence_age_s`` refuses documents whose ``issued_at`` is older (or
    further in the future than ``CLOCK_SKEW_S``); ``None``: no limit. The
    service states ``issued_at``, the TEE does not sign it: the limit catches
    stale documents, while freshness against a hostile host comes from the
    nonce (and, for DCAP quotes, from collateral valid at the verification time).
    ``collateral_file`` or ``pccs_url`` gives the Intel collateral for DCAP
    quotes (a file keeps verification offline); ``snp_ark``, ``snp_ask``,
    ``snp_vcek`` are the AMD certificate files for SEV-SNP reports.
    """

    allow_simulated: bool = False
    accepted_tees: frozenset[str] = TEE_TYPES
    measurements: frozenset[str] = frozenset()
    allowed_data_sources: frozenset[str] = DEFAULT_DATA_SOURCES
    accepted_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    tee_measurements: Mapping[str, Mapping[str, frozenset[str]]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    max_evidence_age_s: float | None = None
    collateral_file: Path | None = None
    pccs_url: str | None = None
    snp_ark: Path | None = None
    snp_ask: Path | None = None
    snp_vcek: Path | None = None

    def __post_init__(self) -> None:
        # Documents carry lower-case hex; normalise here so a pasted upper-case
        # measurement still matches, and refuse typos instead of matching nothing.
        measurements = frozenset(m.lower() for m in _strings(self.measurements, "measurements"))
        bad = sorted(m for m in measurements if not _HEX.match(m))
        if bad:
            raise ValueError(f"policy measurements must be hex strings: {bad}")
        accepted_tees = frozenset(_strings(self.accepted_tees, "accepted_tees"))
        unknown = sorted(accepted_tees - TEE_TYPES)
        if unknown:
            raise ValueError(f"unknown TEE types in policy: {unknown}")
        statuses = frozenset(_strings(self.accepted_tcb_statuses, "accepted_tcb_statuses"))
        unknown = sorted(statuses - TCB_STATUSES)
        if unknown:
            raise ValueError(
                f"unknown or never acceptable TCB statuses in policy: {unknown} "
                f"(acceptable: {sorted(TCB_STATUSES)})"
            )
        age = self.max_evidence_age_s
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float) or not age > 0):
            raise ValueError("max_evidence_age_s must be a positive number of seconds (or None)")
        if age is not None and not math.isfinite(age):
            raise ValueError("max_evidence_age_s must be finite (use None for no limit)")
        if self.collateral_file is not None and self.pccs_url is not None:
            raise ValueError("give either a collateral file or a PCCS URL, not both")
        if self.pccs_url is not None and not re.match(r"^https?://[^/\s]+", self.pccs_url):
            raise ValueError(f"pccs_url is not an http(s) URL: {self.pccs_url!r}")
        object.__setattr__(self, "measurements", measurements)
        object.__setattr__(self, "accepted_tees", accepted_tees)
        object.__setattr__(self, "accepted_tcb_statuses", statuses)
        object.__setattr__(
            self,
            "allowed_data_sources",
            frozenset(_strings(self.allowed_data_sources, "allowed_data_sources")),
        )
        object.__setattr__(self, "tee_measurements", _normalise_tee_measurements(self.tee_measurements))
        for name in ("collateral_file", "snp_ark", "snp_ask", "snp_vcek"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))


CLOCK_SKEW_S = 300
"""How far in the future a document's ``issued_at`` may be when ``max_evidence_age_s`` is set."""


def _strings(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a collection of strings, not one string")
    items = list(values)
    if not all(isinstance(v, str) for v in items):
        raise ValueError(f"{name} must hold strings only")
    return items


def _normalise_tee_measurements(
    value: Mapping[str, Mapping[str, Iterable[str]]],
) -> Mapping[str, Mapping[str, frozenset[str]]]:
    result: dict[str, Mapping[str, frozenset[str]]] = {}
    for tee, registers in value.items():
        known = MEASUREMENT_REGISTERS.get(tee)
        if known is None:
            raise ValueError(
                f"measurements for unknown or unmeasured TEE type {tee!r} "
                f"(known: {sorted(MEASUREMENT_REGISTERS)})"
            )
        pinned: dict[str, frozenset[str]] = {}
        for register, values in registers.items():
            size = known.get(register)
            if size is None:
                raise ValueError(
                    f"unknown {tee} measurement register {register!r}{_did_you_mean(register, known)} "
                    f"(known: {sorted(known)})"
                )
            items = frozenset(v.lower() for v in ([values] if isinstance(values, str) else values))
            bad = sorted(v for v in items if not (_HEX.match(v) and len(v) == 2 * size))
            if bad:
                raise ValueError(f"{tee} {register} values must be {size}-byte hex strings: {bad}")
            pinned[register] = items
        result[tee] = MappingProxyType(pinned)
    return MappingProxyType(result)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- policy files ---------------------------------------------------------------------------------

_TOP_KEYS = frozenset(
    {
        "allow_simulated",
        "accepted_tees",
        "accepted_tcb_statuses",
        "max_evidence_age_s",
        "allowed_data_sources",
        "collateral",
        "measurements",
        "snp",
    }
)
_COLLATERAL_KEYS = frozenset({"file", "pccs_url"})
_SNP_KEYS = frozenset({"ark", "ask", "vcek"})


def load_policy(path: str | os.PathLike[str]) -> VerificationPolicy:
    """Read a TOML policy file (schema in this module's docstring); ``PolicyFileError`` names what is wrong.

    Keys left out keep ``VerificationPolicy``'s defaults; unknown keys are
    refused; relative paths are taken relative to the file's directory and must
    name existing files.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"policy file {source} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"policy file {source} is not valid TOML: {exc}") from None
    reader = _PolicyReader(source)
    kwargs = reader.read(data)
    try:
        return VerificationPolicy(**kwargs)
    except ValueError as exc:
        raise PolicyFileError(f"policy file {source}: {exc}") from None


class _PolicyReader:
    """Turns the parsed TOML into ``VerificationPolicy`` arguments, checking every key and type."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.base = source.absolute().parent

    def fail(self, message: str) -> PolicyFileError:
        return PolicyFileError(f"policy file {self.source}: {message}")

    def check_keys(self, table: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
        for key in table:
            if key not in known:
                raise self.fail(
                    f"unknown key {prefix + key!r}{_did_you_mean(key, known)} (known: {sorted(known)})"
                )

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a table")
        return value

    def strings(self, value: Any, key: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key} must be a list of strings")
        return value

    def path(self, value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key} must be a file path (a string)")
        resolved = Path(value).expanduser()
        if not resolved.is_absolute():
            resolved = self.base / resolved
        if not resolved.is_file():
            raise self.fail(f"{key} names {resolved}, which is not a file")
        return resolved

    def read(self, data: Mapping[str, Any]) -> dict[str, Any]:
        self.check_keys(data, _TOP_KEYS, "")
        kwargs: dict[str, Any] = {}
        if "allow_simulated" in data:
            if not isinstance(data["allow_simulated"], bool):
                raise self.fail("allow_simulated must be true or false")
            kwargs["allow_simulated"] = data["allow_simulated"]
        for key in ("accepted_tees", "accepted_tcb_statuses", "allowed_data_sources"):
            if key in data:
                kwargs[key] = frozenset(self.strings(data[key], key))
        if "max_evidence_age_s" in data:
            age = data["max_evidence_age_s"]
            if isinstance(age, bool) or not isinstance(age, int | float) or not age > 0:
                raise self.fail("max_evidence_age_s must be a positive number of seconds")
            kwargs["max_evidence_age_s"] = age
        if "collateral" in data:
            collateral = self.table(data["collateral"], "collateral")
            self.check_keys(collateral, _COLLATERAL_KEYS, "collateral.")
            if "file" in collateral and "pccs_url" in collateral:
                raise self.fail("collateral: give either file or pccs_url, not both")
            if "file" in collateral:
                kwargs["collateral_file"] = self.path(collateral["file"], "collateral.file")
            if "pccs_url" in collateral:
                url = collateral["pccs_url"]
                if not isinstance(url, str):
                    raise self.fail("collateral.pccs_url must be a string")
                kwargs["pccs_url"] = url
        if "snp" in data:
            snp = self.table(data["snp"], "snp")
            self.check_keys(snp, _SNP_KEYS, "snp.")
            for key in sorted(snp):
                kwargs[f"snp_{key}"] = self.path(snp[key], f"snp.{key}")
        if "measurements" in data:
            measurements = self.table(data["measurements"], "measurements")
            self.check_keys(measurements, frozenset(MEASUREMENT_REGISTERS), "measurements.")
            pinned: dict[str, dict[str, frozenset[str]]] = {}
            for tee, registers in measurements.items():
                prefix = f"measurements.{tee}"
                table = self.table(registers, prefix)
                self.check_keys(table, frozenset(MEASUREMENT_REGISTERS[tee]), prefix + ".")
                pinned[tee] = {
                    name: frozenset(self.strings(values, f"{prefix}.{name}"))
                    for name, values in table.items()
                }
            kwargs["tee_measurements"] = pinned
        return kwargs
