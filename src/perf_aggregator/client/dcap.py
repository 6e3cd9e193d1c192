"""Intel TDX and SGX quotes (DCAP), verified with dcap-qvl.

``dstack`` CVMs run on TDX, so their evidence is a TDX quote and is checked
exactly like one. The collateral (Intel's certificates, CRLs, TCB info and QE
identity) comes from the policy: a JSON file for offline verification, or a
PCCS URL, the only case in which anything is fetched from the network.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from perf_aggregator.client.errors import EvidenceError, EvidenceExpiredError
from perf_aggregator.client.evidence import VerifiedEvidence, iso
from perf_aggregator.client.policy import VerificationPolicy

DCAP_TEES = frozenset({"tdx", "sgx", "dstack"})

# dcap-qvl reports collateral or certificates outside their validity with these words
# ("TCBInfo expired", "CrlExpired", "TCBInfo issue date is in the future", webpki's "NotValidYet").
_TIME_FAILURES = ("expired", "inthefuture", "notvalidyet")


def _dcap_qvl() -> Any:
    """dcap-qvl, imported on first use so the rest of the client works without it."""
    try:
        import dcap_qvl
    except ImportError:
        raise EvidenceError(
            "TDX, SGX and dstack quotes need the dcap-qvl package (pip install dcap-qvl)"
        ) from None
    return dcap_qvl


def quote_kind(tee: str) -> str:
    """``TDX`` or ``SGX``: the quote a document of TEE type ``tee`` must carry."""
    return "SGX" if tee == "sgx" else "TDX"


def _label(tee: str) -> str:
    return "dstack (TDX)" if tee == "dstack" else quote_kind(tee)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_collateral(path: Path) -> Any:
    """Read a collateral JSON file (dcap-qvl's ``QuoteCollateralV3`` JSON, as its ``to_json`` writes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"collateral file {path} cannot be read: {_one_line(exc)}") from None
    try:
        return _dcap_qvl().QuoteCollateralV3.from_json(text)
    except Exception as exc:
        raise EvidenceError(f"collateral file {path} is not DCAP collateral JSON: {_one_line(exc)}") from None


def fetch_collateral(pccs_url: str, quote: bytes) -> Any:
    """Fetch the quote's collateral from a PCCS (network); blocks, even when called from async code."""

    dcap_qvl = _dcap_qvl()

    async def get() -> Any:
        return await dcap_qvl.get_collateral(pccs_url, quote)

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(get())
        # Inside a running event loop (EnclaveClient.verify): run the fetch on its own loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, get()).result()
    except Exception as exc:
        raise EvidenceError(f"could not fetch collateral from PCCS {pccs_url}: {_one_line(exc)}") from None


def _collateral(policy: VerificationPolicy, quote: bytes, label: str) -> Any:
    if policy.collateral_file is not None:
        return load_collateral(policy.collateral_file)
    if policy.pccs_url is not None:
        return fetch_collateral(policy.pccs_url, quote)
    raise EvidenceError(
        f"{label} quote cannot be verified: the policy names no collateral (a collateral file or a PCCS URL)"
    )


def verify_dcap_quote(tee: str, quote: bytes, policy: VerificationPolicy, now: float) -> VerifiedEvidence:
    """Verify a TDX (``tdx``, ``dstack``) or SGX (``sgx``) quote with dcap-qvl at ``now``.

    dcap-qvl checks the PCK certificate chain to Intel's root, the CRLs, the
    QE report and its signature, the quote signature over header and report
    body, the TCB info and QE identity signatures and that the collateral is
    valid at ``now``, and refuses debug TDs and enclaves. Report data and
    measurement registers are read (by dcap-qvl's parser) from the very bytes
    it verified; TCB status and advisories are its verdict.
    """
    kind, label = quote_kind(tee), _label(tee)
    dcap_qvl = _dcap_qvl()
    try:
        parsed = dcap_qvl.parse_quote(quote)
    except Exception as exc:
        raise EvidenceError(f"{label} quote does not parse: {_one_line(exc)}") from None
    actual = "TDX" if parsed.is_tdx() else "SGX" if parsed.is_sgx() else "unknown"
    if actual != kind:
        raise EvidenceError(
            f"the document says {tee} but its evidence is a {actual} quote, not a {kind} quote"
        )

    collateral = _collateral(policy, quote, label)
    try:
        verified = dcap_qvl.verify(quote, collateral, int(now))
    except Exception as exc:
        message = _one_line(exc)
        if any(word in message.lower().replace(" ", "") for word in _TIME_FAILURES):
            raise EvidenceExpiredError(
                f"{label} quote collateral is expired or not yet valid at {iso(now)}: {message}"
            ) from None
        raise EvidenceError(f"{label} quote signature chain does not verify: {message}") from None

    report = parsed.report
    if kind == "TDX":
        if bytes(report.td_attributes)[0] & 0x01:
            raise EvidenceError(f"{label} quote comes from a debug TD (TUD.DEBUG set)")
        registers = {
            "mrtd": bytes(report.mr_td).hex(),
            "rtmr0": bytes(report.rt_mr0).hex(),
            "rtmr1": bytes(report.rt_mr1).hex(),
            "rtmr2": bytes(report.rt_mr2).hex(),
            "rtmr3": bytes(report.rt_mr3).hex(),
            "mrseam": bytes(report.mr_seam).hex(),
            "mrconfigid": bytes(report.mr_config_id).hex(),
            "mrowner": bytes(report.mr_owner).hex(),
            "mrownerconfig": bytes(report.mr_owner_config).hex(),
        }
        measurement = registers["mrtd"]
    else:
        if bytes(report.attributes)[0] & 0x02:
            raise EvidenceError("SGX quote comes from a debug enclave (ATTRIBUTES.DEBUG set)")
        registers = {"mrenclave": bytes(report.mr_enclave).hex(), "mrsigner": bytes(report.mr_signer).hex()}
        measurement = registers["mrenclave"]
    return VerifiedEvidence(
        tee=tee,
        report_data=bytes(report.report_data),
        measurement=measurement,
        registers=registers,
        tcb_status=str(verified.status),
        advisory_ids=tuple(str(a) for a in verified.advisory_ids),
    )
