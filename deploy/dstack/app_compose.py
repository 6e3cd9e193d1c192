"""Write the dstack app-compose.json for Perf-Aggregator and print its compose hash.

dstack measures an application by the SHA-256 of its app-compose.json, byte for byte: the
"compose hash", extended into RTMR3 by the CVM's initrd before any container starts and shown
in the CVM's event log. This script is the one place those bytes come from, so the operator
and every verifier derive the same document (and hash) from the same tagged source::

    python3 deploy/dstack/app_compose.py --image ghcr.io/acme/perf-aggregator@sha256:<64 hex>
    python3 deploy/dstack/app_compose.py --image ... --verify deployed-app-compose.json

The first writes deploy/dstack/app-compose.json (or --output) and prints the compose hash;
the second checks that a document fetched from a running CVM (its tcb info) is exactly the
one this source produces for that image. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "@@IMAGE@@"
# registry[:port]/path@sha256:<64 hex>: a digest, never a tag.
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$")

# Every field below is part of the measured document: changing any of them changes the
# compose hash (RTMR3, and the app id in non-KMS mode). Why each value:
SETTINGS: dict[str, Any] = {
    "manifest_version": 2,
    "name": "perf-aggregator",
    "runner": "docker-compose",
    # No KMS ("non-KMS" boot mode): app keys are ephemeral, the disk is not persistent, the app
    # id equals the compose hash and the key-provider event in RTMR3 is "none". The service needs
    # nothing from a KMS: its enclave keys are generated at each start (clients re-verify and
    # re-register after a restart), and without a KMS there are no encrypted environment
    # variables through which the operator could inject configuration. Switching to KMS mode
    # makes the app id the KMS app contract and adds the KMS root key to RTMR3; verifiers must
    # then also trust that KMS and its on-chain compose-hash whitelist.
    "kms_enabled": False,
    "local_key_provider_enabled": False,
    # The dstack gateway terminates TLS with KMS-issued certificates; not used (no KMS). Expose
    # port 3000 through the VMM's port mapping instead and front it with any TLS proxy.
    "gateway_enabled": False,
    # The operator may set NO environment variable. In particular PERF_AGG_EXCHANGE_URL_<ID>
    # must never be settable: although every signed summary would show the override as its
    # data_source (and the client's default policy refuses it), an instance must simply not be
    # able to read trades from anywhere but the exchange. The compose file has no interpolation
    # either, so even a non-empty list could not reach the container; keep both locks.
    "allowed_envs": [],
    # One measurement for every instance of this compose: with an instance id, RTMR3 differs per
    # CVM and cannot be pinned in a client policy (only replayed from the event log).
    "no_instance_id": True,
    # Start containers only once the guest has a trustworthy time: TTLs, issued_at and
    # evidence age checks depend on it.
    "secure_time": True,
    # The guest agent publishes the tcb info (this document, the event log, the RTMRs) so that
    # anyone can check what runs. Logs stay private: uvicorn access lines carry client addresses
    # and session ids in paths. System info is not needed by verifiers.
    "public_tcbinfo": True,
    "public_logs": False,
    "public_sysinfo": False,
    # No pre_launch_script: it would run as root in the CVM before the app; nothing needs it.
}


class ComposeError(Exception):
    """The compose file or the image reference breaks a rule of the measured deployment."""


def render_compose(template: str, image: str) -> str:
    """The docker-compose text with ``image`` in place, after checking every rule."""
    if not IMAGE_RE.match(image):
        raise ComposeError(f"--image must be pinned by digest (name@sha256:<64 hex>), got {image!r}")
    if template.count(PLACEHOLDER) != 1:
        raise ComposeError(f"the compose file must contain {PLACEHOLDER} exactly once")
    if "$" in template:
        raise ComposeError("the compose file must not contain '$': no variable interpolation")
    if "PERF_AGG_EXCHANGE_URL_" in template.replace("PERF_AGG_EXCHANGE_URL_<ID>", ""):
        raise ComposeError("the compose file must not set PERF_AGG_EXCHANGE_URL_*")
    return template.replace(PLACEHOLDER, image)


def app_compose_bytes(template: str, image: str) -> bytes:
    """The app-compose.json document, canonical JSON (sorted keys, no whitespace, UTF-8).

    Canonical so that tools which re-serialise the document the same way (sorted keys, compact
    separators) keep the bytes, and so the hash is stable across machines.
    """
    document = dict(SETTINGS, docker_compose_file=render_compose(template, image))
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--image", required=True, help="image reference pinned by digest")
    parser.add_argument("--compose", type=Path, default=HERE / "docker-compose.yaml")
    parser.add_argument("--output", type=Path, default=HERE / "app-compose.json")
    parser.add_argument("--verify", type=Path, help="compare with this app-compose.json instead of writing")
    args = parser.parse_args(argv)

    try:
        document = app_compose_bytes(args.compose.read_text(encoding="utf-8"), args.image)
    except (ComposeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    compose_hash = hashlib.sha256(document).hexdigest()

    if args.verify is not None:
        deployed = args.verify.read_bytes()
        deployed_hash = hashlib.sha256(deployed).hexdigest()
        if deployed != document:
            print(
                f"MISMATCH: {args.verify} (sha256 {deployed_hash}) is not the document this source "
                f"produces for {args.image} (sha256 {compose_hash})",
                file=sys.stderr,
            )
            return 1
        print(f"OK: {args.verify} is this source's app-compose.json for {args.image}")
        print(f"compose hash: {compose_hash}")
        return 0

    args.output.write_bytes(document)
    print(f"wrote {args.output}")
    print(f"compose hash: {compose_hash}")
    # Both derived as in dstack's source (not checked on a dstack host from here): without a KMS
    # the app id defaults to the first 20 bytes of the compose hash, and a VMM that fills the
    # TD's MRCONFIGID with the "V1" layout writes 0x01 || compose hash || 15 zero bytes.
    print(f"app id (non-KMS): {compose_hash[:40]}")
    print(f"mrconfigid (V1 layout, if the VMM sets it): {'01' + compose_hash + '00' * 15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
