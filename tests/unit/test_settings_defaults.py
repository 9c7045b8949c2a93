"""The settings model and the pure cores agree on every default.

The pure decision modules carry defaults so that they can be used and property-tested
without the environment; the processors build them from `Settings`. If the two drifted
apart, the calibrated scenario tests would check a configuration production does not run.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from processors.baseline.app import config_from as baseline_config
from processors.baseline.logic import BaselineConfig
from processors.conflict.app import config_from as conflict_config
from processors.conflict.step import ConflictConfig
from processors.quarantine.app import policy_from
from processors.quarantine.policy import QuarantinePolicy
from processors.runtime import Settings

DEFAULTS = Settings.model_construct()  # the declared defaults, without reading the environment


@pytest.mark.parametrize(
    ("built", "pure"),
    [
        (baseline_config(DEFAULTS), BaselineConfig()),
        (conflict_config(DEFAULTS), ConflictConfig()),
        (policy_from(DEFAULTS), QuarantinePolicy()),
    ],
    ids=["baseline", "conflict", "quarantine"],
)
def test_the_processors_run_with_the_defaults_their_pure_cores_were_tested_with(built, pure) -> None:
    assert asdict(built) == asdict(pure)
