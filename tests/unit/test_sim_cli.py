"""`chorus simulate` refuses bad arguments before touching Kafka, with a clear message."""

from __future__ import annotations

from click.testing import CliRunner

from chorus.cli import main

NO_BROKER = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CHORUS_SIM_BROKER_TIMEOUT_S": "2"}


def _invoke(*args: str):
    return CliRunner().invoke(main, ["simulate", *args], env=NO_BROKER)


def test_an_unknown_scenario_is_a_usage_error_listing_the_shipped_ones():
    result = _invoke("--scenario", "nope")
    assert result.exit_code == 2
    assert "unknown scenario 'nope'" in result.output and "hoarder" in result.output


def test_an_invalid_override_names_the_field():
    result = _invoke("--scenario", "cascade", "--agents", "5")
    assert result.exit_code == 2
    assert "chaos.1.agents" in result.output and "agent-00007" in result.output


def test_a_speed_must_be_positive_or_max():
    assert _invoke("--scenario", "clean", "--speed", "fast").exit_code == 2
    assert _invoke("--scenario", "clean", "--speed", "-1").exit_code == 2


def test_an_unreachable_broker_fails_quickly_with_a_hint():
    result = _invoke("--scenario", "clean", "--duration", "2")
    assert result.exit_code == 1
    assert "did not answer within 2s" in result.output and "KAFKA_BOOTSTRAP_SERVERS" in result.output
