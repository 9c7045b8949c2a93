"""Signed operator commands: only the exact bytes a trusted key signed, fresh by the broker's clock, pass."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.quarantine.book import QuarantineBook
from processors.quarantine.policy import QuarantinePolicy
from processors.runtime.errors import KeyFileError
from processors.runtime.signing import canonical_bytes, check_command, load_public_keys, parse_public_keys
from processors.trust.logic import TrustState, apply
from processors.trust.policy import TrustPolicy
from tests.operators import make_key

AT = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
LIMITS = {"max_age_s": 300.0, "max_ahead_s": 30.0}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    return make_key(directory, "alice"), make_key(directory, "mallory")


def trusted(*operator_keys):
    return load_public_keys(",".join(str(k.public_path) for k in operator_keys))


def test_a_command_signed_by_a_trusted_key_passes_and_names_the_key(keys) -> None:
    alice, _ = keys
    cmd = alice.sign("a1", "release", run_id="live", at=AT, reason="false positive")
    verdict = check_command(cmd, trusted(alice), AT.timestamp() + 1, **LIMITS)
    assert verdict.accepted and verdict.key_id == alice.key_id


def test_unsigned_untrusted_and_forged_commands_are_refused(keys) -> None:
    alice, mallory = keys
    cmd = alice.sign("a1", "release", run_id="live", at=AT)
    unsigned = cmd.model_copy(update={"signature": None})
    by_mallory = mallory.sign("a1", "release", run_id="live", at=AT)
    # Mallory signs with her key but claims Alice's key id: the signature does not verify.
    spoofed = by_mallory.model_copy(update={"key_id": alice.key_id})
    at = AT.timestamp()
    assert check_command(unsigned, trusted(alice), at, **LIMITS).code == "unsigned"
    assert check_command(by_mallory, trusted(alice), at, **LIMITS).code == "untrusted"
    assert check_command(spoofed, trusted(alice), at, **LIMITS).code == "forged"
    garbage = cmd.model_copy(update={"signature": "not base64!"})
    assert check_command(garbage, trusted(alice), at, **LIMITS).code == "forged"


def test_freshness_is_judged_by_the_broker_time(keys) -> None:
    alice, _ = keys
    cmd = alice.sign("a1", "release", run_id="live", at=AT)
    at = AT.timestamp()
    assert check_command(cmd, trusted(alice), at + 300, **LIMITS).accepted
    assert check_command(cmd, trusted(alice), at + 301, **LIMITS).code == "expired"
    assert check_command(cmd, trusted(alice), at - 30, **LIMITS).accepted
    assert check_command(cmd, trusted(alice), at - 31, **LIMITS).code == "ahead"
    assert check_command(cmd, trusted(alice), None, **LIMITS).code == "no_timestamp"


TAMPERS = {
    "agent_id": st.sampled_from(["a2", "a1x", "A1"]),
    "command": st.sampled_from(["quarantine", "approve", "reject"]),
    "operator": st.sampled_from(["bob", "root"]),
    "note": st.text(min_size=1, max_size=20),
    "run_id": st.sampled_from(["other", "live2"]),
    "nonce": st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    "occurred_at": st.integers(1, 10**6).map(lambda s: AT + timedelta(seconds=s)),
    "event_id": st.uuids().map(str),
    "causation_ids": st.just(("x",)),
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TAMPERS)).flatmap(lambda f: st.tuples(st.just(f), TAMPERS[f])))
def test_changing_any_signed_field_breaks_the_signature(keys, change) -> None:
    alice, _ = keys
    field, value = change
    cmd = alice.sign("a1", "release", run_id="live", at=AT, reason="why")
    altered = cmd.model_copy(update={field: value})
    if getattr(altered, field) == getattr(cmd, field):
        return
    assert check_command(altered, trusted(alice), AT.timestamp(), **LIMITS).code == "forged"


def test_canonical_bytes_survive_the_wire(keys) -> None:
    from schemas import OperatorCommand, decode, encode

    alice, _ = keys
    cmd = alice.sign("a1", "set_trust", run_id="live", at=AT, trust=55.5, reason="é ✓")
    assert canonical_bytes(decode(OperatorCommand, encode(cmd))) == canonical_bytes(cmd)


def test_key_files_are_checked(tmp_path, keys) -> None:
    alice, _ = keys
    assert list(parse_public_keys(alice.public_path.read_text() + "\n# comment\n")) == [alice.key_id]
    with pytest.raises(KeyFileError, match="2: not an operator public key"):
        parse_public_keys("# keys\nssh-rsa AAAA x\n", "k.pub")
    with pytest.raises(KeyFileError):
        parse_public_keys("ed25519 " + base64.b64encode(b"short").decode())
    with pytest.raises(KeyFileError, match="cannot read"):
        load_public_keys(str(tmp_path / "missing.pub"))
    assert load_public_keys(None) == {}
    with pytest.raises(KeyFileError, match="exists"):
        from processors.runtime.signing import generate_key_files

        generate_key_files(alice.public_path.parent, "alice")
    assert (alice.private_path.stat().st_mode & 0o777) == 0o600


def test_the_signer_is_carried_into_decisions(keys) -> None:
    alice, _ = keys
    quarantine = alice.sign("a1", "quarantine", run_id="live", at=AT, reason="suspicious")
    release = alice.sign("a1", "release", run_id="live", at=AT + timedelta(seconds=5), reason="checked")
    book = QuarantineBook(policy=QuarantinePolicy(), run_id="live")
    [held] = book.handle(quarantine).decisions
    [freed] = book.handle(release).decisions
    assert (held.action, held.signed_by) == ("quarantine", alice.key_id)
    assert (freed.action, freed.signed_by) == ("release", alice.key_id)
    assert alice.key_id in freed.detail and "checked" in freed.detail
    state, change = apply("a1", TrustState(score=100.0), alice.sign("a1", "set_trust", run_id="live", at=AT, trust=40.0), TrustPolicy())
    assert change is not None and change.signed_by == alice.key_id and change.after == 40.0
    _, released = apply("a1", state.model_copy(update={"score": 10.0}), freed, TrustPolicy())
    assert released is not None and released.signed_by == alice.key_id
