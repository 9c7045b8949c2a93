"""Scenario files: a pydantic model of the YAML format, and loading by name or path.

The format is documented for users in docs/scenarios.md.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas import Id, InfectionMode, UtcDatetime

from .errors import ScenarioError
from .profiles import PROFILES

MAX_AGENTS = 100_000
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
Positive = Annotated[float, Field(gt=0.0)]


def agent_id(index: int) -> str:
    """The id of the agent at `index`; zero-padded so ids sort in fleet order."""
    return f"agent-{index:05d}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentsSpec(_Strict):
    count: int = Field(ge=5, le=MAX_AGENTS, description="Fleet size.")
    profiles: dict[str, Positive] = Field(
        default_factory=lambda: {"steady": 1.0}, description="Profile name -> weight in the fleet mix."
    )
    dependencies: int = Field(default=2, ge=0, le=10, description="Upstream agents each agent depends on.")
    coupling: float = Field(
        default=0.5, ge=0.0, le=0.95, description="How much of its upstreams' degradation an agent inherits."
    )
    failover_s: float | None = Field(
        default=10.0, ge=0.0,
        description="Seconds after an upstream's quarantine until its dependents fail over to a healthy replica"
        " (null: they never do).",
    )

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(PROFILES))
        if unknown:
            raise ValueError(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
        if not value:
            raise ValueError("at least one profile is needed")
        return value


class ResourceSpec(_Strict):
    name: Id
    capacity: Positive | None = Field(default=None, description="Fixed capacity in units.")
    capacity_per_agent: Positive | None = Field(default=None, description="Capacity that scales with the fleet.")

    @model_validator(mode="after")
    def _one_capacity(self) -> Self:
        if (self.capacity is None) == (self.capacity_per_agent is None):
            raise ValueError("give exactly one of capacity or capacity_per_agent")
        return self

    def capacity_for(self, agents: int) -> float:
        return self.capacity if self.capacity is not None else round(self.capacity_per_agent * agents, 1)


class ChaosSpec(_Strict):
    at: float = Field(ge=0.0, description="Simulated seconds after the start when the infection begins.")
    mode: InfectionMode
    duration: Positive | None = Field(default=None, description="Seconds the infection lasts; omitted: to the end.")
    agents: tuple[Id, ...] | None = Field(default=None, description="Agents to infect, by id.")
    count: int | None = Field(default=None, ge=1, description="How many healthy agents to pick at random instead.")
    resource: Id | None = Field(default=None, description="Resource the claim modes target (default: the agent's own).")
    # Intensity dials (omitted: the mode's classic strength).
    ramp_s: float = Field(default=0.0, ge=0.0, description="Seconds over which the infection grows to full strength.")
    factor: float | None = Field(
        default=None, ge=1.0, description="latency: x healthy latency (default 10); flood: x request rate (default 20)."
    )
    error_rise: float | None = Field(
        default=None, gt=0.0, le=1.0, description="errors: error rate added at full strength (default 0.45)."
    )
    share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="hoarder/deceptive/defiant: share of capacity per acquisition."
    )
    priority: int | None = Field(default=None, ge=1, le=10, description="Claim modes: priority of the claims.")
    hold_s: float | None = Field(default=None, gt=0.0, description="Claim modes: seconds each claim is held.")

    @model_validator(mode="after")
    def _agents_or_count(self) -> Self:
        if (self.agents is None) == (self.count is None):
            raise ValueError("give exactly one of agents or count")
        return self

    @model_validator(mode="after")
    def _dials_fit_the_mode(self) -> Self:
        claim = self.mode in ("hoarder", "deceptive", "defiant")
        misplaced = [
            name
            for name, given, fits in (
                ("factor", self.factor, self.mode in ("latency", "flood")),
                ("error_rise", self.error_rise, self.mode == "errors"),
                ("share", self.share, claim),
                ("priority", self.priority, claim),
                ("hold_s", self.hold_s, claim),
            )
            if given is not None and not fits
        ]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} does not apply to mode {self.mode}")
        return self


# What each healing action cures in the simulated fleet (infection mode -> probability); "manual" is
# an operator fixing the agent by hand. Nothing but that cures defiance.
DEFAULT_CURES: dict[str, dict[str, float]] = {
    "restart": {"latency": 0.9, "errors": 0.9},
    "throttle": {"flood": 0.9},
    "reset_state": {"hoarder": 0.9},
    "rollback": {"deceptive": 0.9},
    "manual": {"hoarder": 1.0, "flood": 1.0, "latency": 1.0, "errors": 1.0, "deceptive": 1.0, "defiant": 1.0},
}


class HealingSpec(_Strict):
    """How simulated agents respond to healing actions (`immune.healing`)."""

    cures: dict[str, dict[InfectionMode, Annotated[float, Field(ge=0.0, le=1.0)]]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_CURES.items()},
        description="Action -> infection mode -> probability that the action cures it.",
    )
    delay: float = Field(default=3.0, ge=0.0, description="Simulated seconds from an action to its cure.")


class Scenario(_Strict):
    name: Id
    description: str = ""
    seed: int = Field(default=0, ge=0)
    duration: Positive = Field(description="Simulated seconds to run.")
    tick: float = Field(default=1.0, gt=0.0, le=60.0, description="Simulated seconds between vitals.")
    start: UtcDatetime = Field(default=DEFAULT_START, description="Simulated time of the first tick.")
    agents: AgentsSpec
    resources: tuple[ResourceSpec, ...] = Field(min_length=1)
    chaos: tuple[ChaosSpec, ...] = ()
    healing: HealingSpec | None = Field(default=None, description="Responses to healing actions; omitted: the defaults.")

    @field_validator("resources")
    @classmethod
    def _unique_resources(cls, value: tuple[ResourceSpec, ...]) -> tuple[ResourceSpec, ...]:
        names = [r.name for r in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate resource name(s): {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _chaos_refers_to_known_things(self) -> Self:
        known_resources = {r.name for r in self.resources}
        for i, entry in enumerate(self.chaos):
            if entry.resource is not None and entry.resource not in known_resources:
                raise ValueError(f"chaos.{i}.resource: unknown resource {entry.resource!r}")
            for agent in entry.agents or ():
                if not _is_agent_of(agent, self.agents.count):
                    raise ValueError(
                        f"chaos.{i}.agents: {agent!r} is not in a fleet of {self.agents.count} "
                        f"(ids run from {agent_id(0)} to {agent_id(self.agents.count - 1)})"
                    )
            if entry.count is not None and entry.count > self.agents.count:
                raise ValueError(f"chaos.{i}.count: {entry.count} is more than the {self.agents.count} agents")
        return self

    def with_overrides(self, *, agents: int | None = None, duration: float | None = None, seed: int | None = None) -> Scenario:
        """The scenario with command-line overrides applied and validated again."""
        data = self.model_dump()
        if agents is not None:
            data["agents"]["count"] = agents
        if duration is not None:
            data["duration"] = duration
        if seed is not None:
            data["seed"] = seed
        return _validate(data, f"scenario {self.name!r} with overrides")

    def fingerprint(self) -> str:
        """A short digest of everything that shapes the event stream (never the run id)."""
        # A scenario without a healing section digests as it did before healing existed: same event ids.
        dumped = self.model_dump_json(exclude={"healing"} if self.healing is None else None)
        return hashlib.sha256(dumped.encode()).hexdigest()[:16]


def _is_agent_of(candidate: str, count: int) -> bool:
    prefix, _, number = candidate.partition("-")
    return prefix == "agent" and number.isdigit() and agent_id(int(number)) == candidate and int(number) < count


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    folder = resources.files(__package__).joinpath("scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name (`hoarder`) or a YAML file by path."""
    text, where = _read(str(name_or_path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of scenario fields at the top level")
    return _validate(data, where)


def parse_scenario(text: str, where: str = "<scenario>") -> Scenario:
    """A scenario from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of scenario fields at the top level")
    return _validate(data, where)


def _read(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in name_or_path:
        try:
            return path.read_text(), str(path)
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario file {path}: {exc.strerror}") from exc
    shipped = resources.files(__package__).joinpath("scenarios", f"{name_or_path}.yaml")
    if not shipped.is_file():
        raise ScenarioError(
            f"unknown scenario {name_or_path!r}: not a file, and not one of the shipped scenarios "
            f"({', '.join(builtin_scenarios())})"
        )
    return shipped.read_text(), f"scenario {name_or_path!r}"


def _validate(data: dict[str, Any], where: str) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message}" if field else message)
        raise ScenarioError(f"{where}: invalid scenario: " + "; ".join(problems)) from exc
