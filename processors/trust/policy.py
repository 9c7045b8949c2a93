"""TrustPolicy: how much each kind of behaviour moves an agent's score. From a YAML/JSON file and/or a JSON override."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from processors.runtime import Settings
from schemas import Severity

from .errors import TrustPolicyError


class TrustPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: float = Field(default=100.0, ge=0, le=100, description="Score of an agent never seen before.")
    warning_below: float = Field(default=60.0, ge=0, le=100, description="Scores below this are a warning.")
    quarantine_below: float = Field(
        default=30.0, ge=0, le=100, description="Scores below this are quarantine territory."
    )
    anomaly_penalty: dict[Severity, float] = Field(
        default={"low": 3.0, "medium": 8.0, "high": 15.0, "critical": 30.0},
        description="Points lost per anomaly, by severity.",
    )
    anomaly_incident_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Anomalies of an agent less than this many event-time seconds after its previous one are one incident:"
            " it costs the penalty of its worst severity once, not one penalty per metric and escalation."
        ),
    )
    conflict_penalty: float = Field(
        default=12.0, ge=0, description="Points lost for a conflict, times the agent's aggressiveness and the risk."
    )
    conflict_min_aggressiveness: float = Field(
        default=0.5, ge=0, le=1, description="Less aggressive claimants are not penalised."
    )
    conflict_min_risk: float = Field(default=0.3, ge=0, le=1, description="Lower-risk predictions penalise nobody.")
    hoarding_factor: float = Field(
        default=2.0,
        gt=1,
        description="An aggressive claimant (see conflict_min_aggressiveness) with this many fair shares is hoarding.",
    )
    hoarding_penalty: float = Field(default=10.0, ge=0, description="Points lost per hoarding claim.")
    victim_grace_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "After a conflict window in which the agent claimed but was not aggressive, this many event-time"
            " seconds of its anomalies are blamed on the contention, not on it."
        ),
    )
    victim_upstream_degraded: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="An anomaly sampled while the agent's upstreams were at least this degraded is blamed on them.",
    )
    recovery_clean_events: int = Field(
        default=20, ge=1, description="Clean intentions in a row that earn one recovery step."
    )
    recovery_step: float = Field(default=2.0, ge=0, description="Points regained per clean stretch.")
    recovery_cap: float = Field(
        default=100.0, ge=0, le=100, description="Good behaviour alone never lifts a score above this."
    )
    release_floor: float = Field(
        default=40.0, ge=0, le=100, description="A released agent starts again from at least this score."
    )

    @model_validator(mode="after")
    def _ordered(self) -> TrustPolicy:
        if self.quarantine_below > self.warning_below:
            raise ValueError("quarantine_below must not exceed warning_below")
        if any(p < 0 for p in self.anomaly_penalty.values()):
            raise ValueError("anomaly penalties must be non-negative")
        return self


def load_policy(settings: Settings) -> TrustPolicy:
    """Defaults, then the file named by CHORUS_TRUST_POLICY_FILE, then the CHORUS_TRUST_POLICY JSON object."""
    data: dict[str, Any] = {}
    if settings.trust_policy_file:
        path = Path(settings.trust_policy_file)
        try:
            loaded = yaml.safe_load(path.read_text())  # YAML is a superset of JSON: one loader for both
        except (OSError, yaml.YAMLError) as exc:
            raise TrustPolicyError(f"cannot read trust policy {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise TrustPolicyError(f"trust policy {path} is not a mapping")
        data.update(loaded)
    if settings.trust_policy:
        try:
            override = json.loads(settings.trust_policy)
        except ValueError as exc:
            raise TrustPolicyError(f"CHORUS_TRUST_POLICY is not JSON: {exc}") from exc
        if not isinstance(override, dict):
            raise TrustPolicyError("CHORUS_TRUST_POLICY is not a JSON object")
        data.update(override)
    try:
        return TrustPolicy.model_validate(data)
    except ValidationError as exc:
        raise TrustPolicyError(f"invalid trust policy: {exc}") from exc
