"""TrustPolicy configuration: defaults, a YAML/JSON file, an environment override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.runtime import Settings
from processors.trust import TrustPolicy, TrustPolicyError, load_policy


def test_without_configuration_the_defaults_apply() -> None:
    assert load_policy(Settings(trust_policy_file=None, trust_policy=None)) == TrustPolicy()


def test_a_yaml_file_is_read_and_the_json_override_wins(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("recovery_step: 5\nanomaly_penalty: {low: 1, medium: 2, high: 3, critical: 4}\n")
    policy = load_policy(Settings(trust_policy_file=str(path), trust_policy='{"recovery_step": 7}'))
    assert policy.recovery_step == 7 and policy.anomaly_penalty["critical"] == 4


def test_the_override_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_TRUST_POLICY", '{"hoarding_penalty": 25}')
    assert load_policy(Settings()).hoarding_penalty == 25


@pytest.mark.parametrize(
    ("file_text", "override"),
    [
        (None, '{"recovery_step": -1}'),
        (None, "not json"),
        (None, '{"unknown_knob": 1}'),
        (None, '{"quarantine_below": 70, "warning_below": 60}'),
        ("- a list", None),
    ],
)
def test_a_bad_policy_is_a_clear_error(tmp_path: Path, file_text: str | None, override: str | None) -> None:
    path = None
    if file_text is not None:
        path = tmp_path / "p.yaml"
        path.write_text(file_text)
    with pytest.raises(TrustPolicyError):
        load_policy(Settings(trust_policy_file=str(path) if path else None, trust_policy=override))


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrustPolicyError, match="cannot read"):
        load_policy(Settings(trust_policy_file=str(tmp_path / "absent.yaml")))
