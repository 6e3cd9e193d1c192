"""VerificationPolicy fields and TOML policy files (load_policy)."""

import dataclasses
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from client.tee_evidence import (
    SGX_COLLATERAL,
    SGX_MRENCLAVE,
    SGX_MRSIGNER,
    SGX_NOW,
    SGX_QUOTE,
    TDX_COLLATERAL,
    TDX_MRTD,
    TDX_RTMR0,
)
from perf_aggregator.client import (
    DEFAULT_DATA_SOURCES,
    ClientError,
    PolicyError,
    PolicyFileError,
    VerificationPolicy,
    check_policy,
    load_policy,
    verify_evidence,
)
from perf_aggregator.client import policy as policy_module


def example_toml() -> str:
    """The complete example of the policy module's docstring."""
    doc = policy_module.__doc__
    assert doc is not None
    start = doc.index("A complete example::") + len("A complete example::")
    end = doc.index("Registers a policy may pin")
    return textwrap.dedent(doc[start:end]).strip() + "\n"


def write(folder: Path, text: str, name: str = "policy.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def companions(tmp_path):
    """The files the docstring example names, beside it."""
    shutil.copy(TDX_COLLATERAL, tmp_path / "tdx_quote_collateral.json")
    for name in ("ark", "ask", "vcek"):
        (tmp_path / f"{name}.pem").write_text("placeholder: load_policy only checks that the file exists\n")
    return tmp_path


def test_the_documented_example_loads(companions):
    loaded = load_policy(write(companions, example_toml()))
    assert loaded.allow_simulated is False
    assert loaded.accepted_tees == {"tdx", "sgx", "sev-snp", "dstack"}
    assert loaded.accepted_tcb_statuses == {"UpToDate", "SWHardeningNeeded"}
    assert loaded.max_evidence_age_s == 600
    assert loaded.allowed_data_sources == {"https://api.binance.com", "https://fapi.binance.com"}
    assert loaded.collateral_file == companions / "tdx_quote_collateral.json"
    assert loaded.pccs_url is None
    assert loaded.tee_measurements["tdx"]["mrtd"] == {TDX_MRTD}
    assert loaded.tee_measurements["tdx"]["rtmr0"] == {TDX_RTMR0}
    assert loaded.tee_measurements["sgx"] == {"mrenclave": {SGX_MRENCLAVE}, "mrsigner": {SGX_MRSIGNER}}
    assert loaded.tee_measurements["sev-snp"] == {"measurement": frozenset()}
    assert (loaded.snp_ark, loaded.snp_ask, loaded.snp_vcek) == tuple(
        companions / f"{n}.pem" for n in ("ark", "ask", "vcek")
    )


def test_an_empty_policy_file_keeps_the_safe_defaults(tmp_path):
    assert load_policy(write(tmp_path, "")) == VerificationPolicy()
    defaults = VerificationPolicy()
    assert defaults.allow_simulated is False
    assert defaults.accepted_tcb_statuses == {"UpToDate"}
    assert defaults.allowed_data_sources == DEFAULT_DATA_SOURCES
    assert defaults.max_evidence_age_s is None
    assert defaults.collateral_file is None and defaults.pccs_url is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("acepted_tees = ['tdx']", "'acepted_tees' (did you mean 'accepted_tees'?)"),
        ("allow_simulatd = true", "'allow_simulatd' (did you mean 'allow_simulated'?)"),
        ("[collateral]\nurl = 'https://pccs.example'", "'collateral.url'"),
        ("[snp]\narc = 'ark.pem'", "'snp.arc' (did you mean 'ark'?)"),
        ("[measurements.tpm]\npcr0 = []", "'measurements.tpm'"),
        ("[measurements.tdx]\nmrtdd = []", "'measurements.tdx.mrtdd' (did you mean 'mrtd'?)"),
        ("[measurements.sgx]\nmrtd = []", "'measurements.sgx.mrtd'"),
    ],
)
def test_unknown_keys_are_refused_by_name(tmp_path, text, key):
    with pytest.raises(PolicyFileError, match=re.escape(f"unknown key {key}")):
        load_policy(write(tmp_path, text))


def test_relative_paths_are_relative_to_the_policy_file(tmp_path, monkeypatch):
    folder = tmp_path / "policies" / "prod"
    (folder / "amd").mkdir(parents=True)
    for name in ("ark", "ask", "vcek"):
        (folder / "amd" / f"{name}.pem").write_text("x")
    shutil.copy(SGX_COLLATERAL, folder / "collateral.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_policy(
        write(
            folder,
            """
            [collateral]
            file = "collateral.json"
            [snp]
            ark = "amd/ark.pem"
            ask = "amd/ask.pem"
            vcek = "amd/../amd/vcek.pem"
            """,
        )
    )
    assert loaded.collateral_file == folder / "collateral.json"
    assert loaded.snp_ark == folder / "amd" / "ark.pem"
    assert (
        loaded.snp_vcek is not None and loaded.snp_vcek.resolve() == (folder / "amd" / "vcek.pem").resolve()
    )
    # A relative path to the policy file itself works the same way.
    relative = Path("..") / "policies" / "prod" / "policy.toml"
    assert load_policy(relative).collateral_file == Path.cwd() / relative.parent / "collateral.json"


def test_absolute_paths_are_kept(tmp_path):
    loaded = load_policy(write(tmp_path, f'[collateral]\nfile = "{TDX_COLLATERAL}"\n'))
    assert loaded.collateral_file == TDX_COLLATERAL


def test_missing_file_is_refused_naming_the_key(tmp_path):
    with pytest.raises(PolicyFileError, match=r"snp\.vcek names .*vcek\.pem, which is not a file"):
        load_policy(write(tmp_path, '[snp]\nvcek = "vcek.pem"\n'))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow_simulated = 'yes'", "allow_simulated must be true or false"),
        ("accepted_tees = [1]", "accepted_tees must be a list of strings"),
        ("accepted_tees = ['tpm']", "unknown TEE types in policy: ['tpm']"),
        (
            "accepted_tcb_statuses = ['UpTodate']",
            "unknown or never acceptable TCB statuses in policy: ['UpTodate']",
        ),
        ("accepted_tcb_statuses = ['Revoked']", "never acceptable TCB statuses in policy: ['Revoked']"),
        ("max_evidence_age_s = 0", "max_evidence_age_s must be a positive number"),
        ("max_evidence_age_s = true", "max_evidence_age_s must be a positive number"),
        ("max_evidence_age_s = inf", "max_evidence_age_s must be finite"),
        ("collateral = 'file.json'", "collateral must be a table"),
        ("[collateral]\npccs_url = 'ftp://pccs'", "pccs_url is not an http"),
        ("[collateral]\npccs_url = 'https://a'\nfile = 'b'", "give either file or pccs_url"),
        ("[measurements.tdx]\nmrtd = ['abcd']", "tdx mrtd values must be 48-byte hex strings: ['abcd']"),
        ("[measurements.sgx]\nmrenclave = ['zz']", "sgx mrenclave values must be 32-byte hex strings"),
        ("[measurements.tdx]\nmrtd = [1]", "measurements.tdx.mrtd must be a list of strings"),
        ("allow_simulated = [", "is not valid TOML"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(PolicyFileError, match=re.escape(message)):
        load_policy(write(tmp_path, text))


def test_policy_file_errors_are_client_errors_and_value_errors(tmp_path):
    with pytest.raises(ClientError):
        load_policy(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="cannot be read"):
        load_policy(tmp_path / "absent.toml")


def test_a_single_string_is_one_value(tmp_path):
    loaded = load_policy(
        write(tmp_path, f'accepted_tees = "tdx"\n[measurements.tdx]\nmrtd = "{TDX_MRTD.upper()}"\n')
    )
    assert loaded.accepted_tees == {"tdx"}
    assert loaded.tee_measurements["tdx"]["mrtd"] == {TDX_MRTD}


def test_loaded_policy_verifies_the_sgx_fixture_only_when_its_status_is_listed(tmp_path):
    shutil.copy(SGX_COLLATERAL, tmp_path / "sgx.json")
    strict = load_policy(write(tmp_path, '[collateral]\nfile = "sgx.json"\n', "strict.toml"))
    evidence = verify_evidence("sgx", SGX_QUOTE.read_bytes(), strict, now=SGX_NOW)
    with pytest.raises(PolicyError, match="TCB status ConfigurationAndSWHardeningNeeded is not accepted"):
        check_policy(evidence, strict)
    relaxed = load_policy(
        write(
            tmp_path,
            f"""
            accepted_tcb_statuses = ["UpToDate", "ConfigurationAndSWHardeningNeeded"]
            [collateral]
            file = "sgx.json"
            [measurements.sgx]
            mrenclave = ["{SGX_MRENCLAVE}"]
            """,
            "relaxed.toml",
        )
    )
    check_policy(verify_evidence("sgx", SGX_QUOTE.read_bytes(), relaxed, now=SGX_NOW), relaxed)


def test_policy_stays_frozen_hashable_and_replaceable():
    base = VerificationPolicy(tee_measurements={"tdx": {"mrtd": [TDX_MRTD.upper()]}})
    assert base.tee_measurements == {"tdx": {"mrtd": {TDX_MRTD}}}
    with pytest.raises(TypeError):
        base.tee_measurements["sgx"] = {}  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.allow_simulated = True  # type: ignore[misc]
    hash(base)
    widened = dataclasses.replace(
        base, allowed_data_sources=base.allowed_data_sources | {"http://127.0.0.1:9100"}
    )
    assert "http://127.0.0.1:9100" in widened.allowed_data_sources
    assert widened.tee_measurements == base.tee_measurements
    assert dataclasses.replace(base, allow_simulated=True).allow_simulated


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"tee_measurements": {"simulated": {"measurement": []}}},
            "unknown or unmeasured TEE type 'simulated'",
        ),
        ({"tee_measurements": {"tdx": {"mrenclave": []}}}, "unknown tdx measurement register 'mrenclave'"),
        ({"accepted_tees": "tdx"}, "accepted_tees must be a collection of strings, not one string"),
        (
            {"collateral_file": Path("a.json"), "pccs_url": "https://pccs"},
            "either a collateral file or a PCCS URL",
        ),
    ],
)
def test_policy_refuses_ambiguous_or_unknown_settings(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        VerificationPolicy(**kwargs)
