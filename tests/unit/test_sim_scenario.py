"""Scenario files: the shipped ones load; a bad file is an error that names the field."""

from __future__ import annotations

import pytest

from simulator import ScenarioError, builtin_scenarios, load_scenario, parse_scenario

VALID = """
name: tiny
seed: 3
duration: 30
agents: {count: 10, profiles: {steady: 1}}
resources:
  - {name: gpu, capacity: 40}
chaos:
  - {at: 5, agents: [agent-00008], mode: hoarder, duration: 10}
"""


def test_every_shipped_scenario_loads_and_large_has_ten_thousand_agents():
    assert set(builtin_scenarios()) >= {"clean", "hoarder", "flood", "mixed", "cascade", "large", "mild"}
    loaded = {name: load_scenario(name) for name in builtin_scenarios()}
    assert loaded["large"].agents.count == 10_000
    assert loaded["clean"].chaos == ()
    assert {c.mode for c in loaded["mixed"].chaos} == {"hoarder", "flood", "latency", "errors", "deceptive", "defiant"}


def test_a_scenario_file_loads_by_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(VALID)
    scenario = load_scenario(str(path))
    assert scenario.name == "tiny" and scenario.resources[0].capacity_for(10) == 40


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("seed: 3", "seed: 3\ncolour: blue"), "colour"),
        (("mode: hoarder", "mode: sneezing"), "chaos.0.mode"),
        (("count: 10,", "count: 2,"), "agents.count"),
        (("steady: 1", "lazy: 1"), "agents.profiles"),
        (("{name: gpu, capacity: 40}", "{name: gpu}"), "resources.0"),
        (("{name: gpu, capacity: 40}", "{name: gpu, capacity: -1}"), "resources.0.capacity"),
        (("agents: [agent-00008]", "agents: [agent-00008], count: 1"), "chaos.0"),
        (("agents: [agent-00008]", "agents: [agent-00010]"), "chaos.0.agents"),
        (("duration: 30", "duration: soon"), "duration"),
        (("mode: hoarder,", "mode: hoarder, resource: tpu,"), "chaos.0.resource"),
    ],
)
def test_an_invalid_scenario_is_an_error_naming_the_field(change, field):
    old, new = change
    assert old in VALID
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(VALID.replace(old, new), "tiny.yaml")
    assert f"{field}:" in str(caught.value)
    assert "tiny.yaml" in str(caught.value)


def test_an_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'.*hoarder"):
        load_scenario("nope")


def test_a_missing_file_and_broken_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(str(tmp_path / "absent.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(str(broken))


def test_overrides_are_validated_again():
    scenario = parse_scenario(VALID)
    assert scenario.with_overrides(agents=50, duration=5, seed=9).agents.count == 50
    with pytest.raises(ScenarioError, match="chaos.0.agents"):
        scenario.with_overrides(agents=5)  # the chaos entry names agent-00008
    with pytest.raises(ScenarioError, match="agents.count"):
        scenario.with_overrides(agents=3)


def test_the_fingerprint_follows_the_content():
    scenario = parse_scenario(VALID)
    assert scenario.fingerprint() == parse_scenario(VALID).fingerprint()
    assert scenario.fingerprint() != scenario.with_overrides(seed=4).fingerprint()
