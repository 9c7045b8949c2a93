"""The app factory: one Faust app per processor, no tables, no changelogs, web off, own group."""

from __future__ import annotations

from processors.baseline.app import make_processor as baseline_processor
from processors.runtime import Settings, build_app
from processors.runtime.metrics import metrics_port
from processors.trust import TrustPolicy
from processors.trust.app import make_processor as trust_processor


def test_each_processor_is_its_own_faust_app_and_consumer_group() -> None:
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS="k1:9092,k2:9092")
    baseline = build_app(baseline_processor(settings), settings)
    trust = build_app(trust_processor(TrustPolicy()), settings)
    assert (baseline.conf.id, trust.conf.id) == ("chorus-baseline", "chorus-trust")
    assert [str(url) for url in baseline.conf.broker] == ["kafka://k1:9092", "kafka://k2:9092"]


def test_tables_changelogs_leader_topic_and_web_are_off_by_default() -> None:
    settings = Settings()
    conf = build_app(baseline_processor(settings), settings).conf
    assert str(conf.store) == "memory:"
    assert conf.topic_disable_leader and not conf.topic_allow_declare
    assert not conf.web_enabled
    assert not conf.stream_wait_empty  # a batch stuck on a retry must not hang shutdown or rebalance


def test_a_suffix_isolates_a_run_and_a_web_port_turns_faust_web_on() -> None:
    settings = Settings(app_id_suffix="-bench-1", web_port=6070)
    conf = build_app(baseline_processor(settings), settings).conf
    assert conf.id == "chorus-baseline-bench-1" and conf.web_enabled and conf.web_port == 6070


def test_every_processor_has_its_own_default_metrics_port_and_0_turns_metrics_off() -> None:
    ports = {name: metrics_port(name, None) for name in ("baseline", "trust", "conflict", "quarantine")}
    assert len(set(ports.values())) == 4
    assert metrics_port("trust", 0) == 0 and metrics_port("trust", 9999) == 9999
