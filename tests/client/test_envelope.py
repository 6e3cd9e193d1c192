import base64
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from pyhpke import OpenError

from perf_aggregator.client import (
    Credentials,
    EnvelopeError,
    VerificationPolicy,
    VerifiedEnclave,
    seal_credentials,
    verify_attestation,
)

SECRETS = ("key-AAAA1111", "secret-BBBB2222", "pass-CCCC3333")


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(
        exchange="coinbase",
        api_key=SECRETS[0],
        api_secret=SECRETS[1],
        passphrase=SECRETS[2],
        since=datetime(2026, 1, 1, tzinfo=UTC),
        symbols=("BTC/USD",),
    )


@pytest.fixture
def verified(enclave) -> VerifiedEnclave:
    return verify_attestation(enclave.attestation(), VerificationPolicy(allow_simulated=True), b"")


METADATA = {"exchange": "coinbase", "label": "main account", "ttl": 86400}


def test_sealed_envelope_opens_with_the_enclave_key_to_the_api_plaintext(enclave, verified, credentials):
    body = seal_credentials(verified, credentials, METADATA)

    assert set(body) == {"enc", "ciphertext", "metadata"}
    assert body["metadata"] == METADATA
    assert len(base64.b64decode(body["enc"], validate=True)) == 32
    assert enclave.open(body) == {
        "exchange": "coinbase",
        "api_key": SECRETS[0],
        "api_secret": SECRETS[1],
        "passphrase": SECRETS[2],
        "account_type": "spot",
        "since": "2026-01-01T00:00:00.000Z",
        "symbols": ["BTC/USD"],
    }


def test_unset_since_is_left_to_the_enclave_default_and_no_passphrase_is_null(enclave, verified):
    credentials = Credentials(exchange="binance", api_key="k", api_secret="s", account_type="futures")
    plaintext = enclave.open(seal_credentials(verified, credentials, {**METADATA, "exchange": "binance"}))
    assert "since" not in plaintext
    assert plaintext["passphrase"] is None
    assert plaintext["account_type"] == "futures"


def test_each_envelope_uses_a_fresh_encapsulated_key(verified, credentials):
    first = seal_credentials(verified, credentials, METADATA)
    second = seal_credentials(verified, credentials, METADATA)
    assert first["enc"] != second["enc"]
    assert first["ciphertext"] != second["ciphertext"]


def test_tampered_ciphertext_does_not_open(enclave, verified, credentials):
    body = seal_credentials(verified, credentials, METADATA)
    raw = bytearray(base64.b64decode(body["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(OpenError):
        enclave.open({**body, "ciphertext": base64.b64encode(bytes(raw)).decode()})


@pytest.mark.parametrize("change", [{"ttl": 604800}, {"label": "other"}, {"extra": 1}])
def test_tampered_metadata_does_not_open(enclave, verified, credentials, change):
    body = seal_credentials(verified, credentials, METADATA)
    with pytest.raises(OpenError):
        enclave.open({**body, "metadata": {**METADATA, **change}})


def test_envelope_for_another_enclave_does_not_open(enclave, credentials):
    other = VerifiedEnclave("simulated", "00" * 32, bytes(enclave.hpke_public[::-1]), enclave.signing_public)
    with pytest.raises(OpenError):
        enclave.open(seal_credentials(other, credentials, METADATA))


def test_metadata_naming_another_exchange_is_refused(verified, credentials):
    with pytest.raises(EnvelopeError, match="exchange"):
        seal_credentials(verified, credentials, {**METADATA, "exchange": "kraken"})


def test_credentials_never_show_secrets(credentials):
    for text in (repr(credentials), str(credentials), credentials.model_dump_json()):
        for secret in SECRETS:
            assert secret not in text


def test_credentials_validation_errors_do_not_quote_secrets():
    with pytest.raises(ValidationError) as info:
        Credentials.model_validate({"exchange": "Not An Id", "api_key": SECRETS[0], "api_secret": SECRETS[1]})
    assert all(secret not in str(info.value) for secret in SECRETS)


def test_naive_since_is_refused():
    with pytest.raises(ValidationError):
        Credentials(exchange="binance", api_key="k", api_secret="s", since=datetime(2026, 1, 1))
