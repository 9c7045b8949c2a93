"""The healing policy: which actions may cure each condition (in the policy's order), which
conditions are severe, and how recovery is verified. Pure data; `load_policy` reads overrides."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas import CONDITIONS, Condition, HealingKind

from .errors import HealingPolicyError

# Cheapest first: a restart costs least, so it leads wherever it might help; immune memory
# reorders each list by what actually cured that condition before.
DEFAULT_ACTIONS: dict[Condition, tuple[HealingKind, ...]] = {
    "resource_hoarding": ("restart", "throttle", "reset_state"),
    "request_flood": ("restart", "throttle"),
    "latency_fault": ("restart", "rollback"),
    "error_burst": ("restart", "rollback"),
    "deception": ("reset_state", "rollback"),
    "defiance": ("restart", "reset_state"),
    "unknown": ("restart", "reset_state", "rollback"),
}


class HealingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: dict[Condition, tuple[HealingKind, ...]] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    severe: frozenset[Condition] = Field(
        default=frozenset({"deception", "defiance"}),
        description="Conditions whose actions wait for an operator's approval.",
    )
    operator_verified: frozenset[Condition] = Field(
        default=frozenset({"deception", "defiance"}),
        description="Conditions a held agent's vitals cannot show cured (the claims are the symptom, and a held "
        "agent makes none, or defies): only an operator's `heal` can lead to their verified cure.",
    )
    action_timeout_s: float = Field(default=20.0, gt=0, description="Event time an action has to show a cure.")
    verify_samples: int = Field(default=5, ge=1, description="Consecutive vitals within baseline that verify a cure.")
    verify_z: float = Field(default=4.0, gt=0, description="|z| against the baseline under which a sample is normal.")
    min_stddev: float = Field(default=0.01, gt=0, description="Floor of a baseline's standard deviation, absolute.")
    min_rel_stddev: float = Field(default=0.05, ge=0, description="Floor of the standard deviation relative to |mean|.")
    diagnosis_delay_s: float = Field(
        default=4.0, ge=0, description="Event time after a quarantine during which evidence is still gathered."
    )
    defiance_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="Event time after a quarantine during which the agent's own claims are not defiance (the fleet "
        "learns of its quarantine with a delay) and no cure is verified.",
    )
    evidence_horizon_s: float = Field(default=120.0, gt=0, description="How far back evidence counts.")
    evidence_cap: int = Field(default=16, ge=1, description="Evidence items kept per agent and kind.")
    agent_memory_cap: int = Field(default=256, ge=1, description="Agents whose own outcomes memory keeps per condition.")

    @model_validator(mode="after")
    def _every_condition_listed(self) -> HealingPolicy:
        missing = [c for c in CONDITIONS if c not in self.actions]
        if missing:
            raise ValueError(f"actions: no list for {', '.join(missing)}")
        for condition, kinds in self.actions.items():
            if "manual" in kinds:
                raise ValueError(f"actions.{condition}: 'manual' is the operator's, not a policy action")
            if len(set(kinds)) != len(kinds):
                raise ValueError(f"actions.{condition}: an action is listed twice")
        return self


def load_policy(overrides: str | None) -> HealingPolicy:
    """Defaults, then the JSON object `CHORUS_HEALING_POLICY` (per-condition action lists merge into the defaults)."""
    data: dict[str, Any] = {}
    if overrides:
        try:
            data = json.loads(overrides)
        except ValueError as exc:
            raise HealingPolicyError(f"CHORUS_HEALING_POLICY is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise HealingPolicyError("CHORUS_HEALING_POLICY is not a JSON object")
        if isinstance(data.get("actions"), dict):
            data["actions"] = {**DEFAULT_ACTIONS, **data["actions"]}
    try:
        return HealingPolicy.model_validate(data)
    except ValidationError as exc:
        raise HealingPolicyError(f"invalid healing policy: {exc}") from exc
