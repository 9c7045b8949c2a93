"""What the README promises stays true."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from chorus.cli import main
from simulator import parse_scenario

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_scenario_example_is_a_valid_scenario() -> None:
    example = re.search(r"```yaml\n(.*?)```", README, re.S).group(1)
    assert parse_scenario(example, "README").name == "two-hoarders"


def test_every_command_in_the_cli_reference_exists() -> None:
    for command in sorted(set(re.findall(r"^\| `chorus (\w+)", README, re.M))):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0, f"chorus {command}: {result.output}"


def test_the_quick_start_is_exactly_two_make_targets_that_exist() -> None:
    quick_start = re.search(r"## Quick start\n\n```sh\n(.*?)```", README, re.S).group(1)
    targets = [line.split()[1] for line in quick_start.strip().splitlines()]
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert targets == ["demo", "test"]
    assert all(re.search(rf"^{t}:", makefile, re.M) for t in targets)
