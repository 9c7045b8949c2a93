"""A worker whose Kafka consumer fails for good stops loudly, so that its supervisor restarts it."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer

from processors.runtime.security import client_config
from schemas import VITALS

from .runtime_workers import running_worker

pytestmark = pytest.mark.integration


def test_a_worker_fenced_by_a_member_with_its_static_id_exits_with_an_error_instead_of_staying_deaf(
    services, run_id, tmp_path
) -> None:
    # What a session timeout on an overloaded broker led to in a pipeline bench: the worker's member id
    # was taken over, librdkafka declared the consumer fatally fenced, and the worker went on turning
    # without a consumer. Here another member joins with the worker's group.instance.id to fence it.
    instance = f"fence-{run_id}"
    log = tmp_path / "baseline.log"
    with running_worker("baseline", services, run_id, [VITALS], tmp_path, CHORUS_GROUP_INSTANCE_ID=instance) as worker:
        deadline = time.monotonic() + 120
        while b"partitions assigned" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert b"partitions assigned" in log.read_bytes(), log.read_text()[-2000:]
        usurper = Consumer(
            {**client_config(bootstrap=services.kafka), "group.id": f"chorus-baseline-{run_id}",
             "group.instance.id": instance, "enable.auto.commit": False}  # fmt: skip
        )
        try:
            usurper.subscribe([VITALS.name])
            deadline = time.monotonic() + 90
            while worker.poll() is None and time.monotonic() < deadline:
                usurper.poll(0.5)
        finally:
            usurper.close()
        assert worker.poll() is not None, "the fenced worker is still running: " + log.read_text()[-2000:]
    assert worker.returncode != 0
    assert "the Kafka consumer stopped for good" in log.read_text()
