"""The one settings model: every knob Chorus reads from the environment, with its default named once.

Variables are prefixed `CHORUS_` (for example `CHORUS_RUN_ID`); the service addresses
also answer to the conventional `KAFKA_BOOTSTRAP_SERVERS` and `REDIS_URL`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


class ApiToken(BaseModel):
    """Who a bearer token of the HTTP API speaks for, and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, pattern=r"^\S+$", description="Named in the audit field of every command it writes.")
    role: Literal["read", "operate"] = "read"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHORUS_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_KAFKA,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "CHORUS_KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, host:port[,host:port].",
    )
    redis_url: str = Field(
        default=DEFAULT_REDIS,
        validation_alias=AliasChoices("REDIS_URL", "CHORUS_REDIS_URL"),
        description="Redis URL holding all processor state.",
    )
    # --- Kafka security (every client: confluent producer/consumer/admin, Faust's aiokafka, simulator) ---
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How clients talk to Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism, when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user (the Kafka principal User:<name>).")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (never logged).")
    kafka_ssl_ca_location: str | None = Field(
        default=None, description="PEM file of the CA that signed the broker's certificate; unset = system CAs."
    )
    kafka_ssl_certificate_location: str | None = Field(
        default=None, description="PEM client certificate, for brokers that require mutual TLS."
    )
    kafka_ssl_key_location: str | None = Field(default=None, description="PEM private key of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the client key, if it is encrypted (never logged)."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that the broker's certificate names the host connected to."
    )
    kafka_principals_dir: str | None = Field(
        default=None,
        description="Folder of <principal>.env files (`chorus stack up --secure` writes one): demo and eval run "
        "each processor and the simulator as its own principal.",
    )
    run_id: str = Field(default="live", min_length=1, description="Run whose events the processors handle.")
    log_level: str = Field(default="INFO", description="Python log level name.")

    # --- conflict processor -----------------------------------------------------------
    conflict_window_s: float = Field(
        default=5.0, gt=0, description="Length of the conflict processor's tumbling event-time windows."
    )
    conflict_lateness_s: float = Field(
        default=2.0, ge=0, description="Event time a window stays open after its end for late claims."
    )
    conflict_default_capacity: float = Field(
        default=100.0, gt=0, description="Capacity of a resource not named in conflict_capacities."
    )
    conflict_capacities: dict[str, float] = Field(
        default_factory=dict, description='Capacity per resource, JSON (e.g. {"gpu": 8}).'
    )
    conflict_cost_scale: float = Field(
        default=2.0, gt=0, description="Hawk/dove conflict cost per unit of load (demand / capacity)."
    )
    conflict_min_risk: float = Field(
        default=0.3, ge=0, le=1, description="Predictions below this risk are not published."
    )
    conflict_aggressor_min: float = Field(
        default=0.75, ge=0, le=1, description="Aggressiveness needed to be named most aggressive."
    )
    conflict_early_risk: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Running risk at which an open window is predicted before it closes (1 = only at close).",
    )
    conflict_early_min_claims: int = Field(
        default=5, ge=1, description="Claims an open window needs before it may be predicted early."
    )
    # --- Gemini enrichment of high-risk conflicts -----------------------------------------
    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GEMINI_API_KEY", "CHORUS_GEMINI_API_KEY"),
        description="Gemini API key; without it conflicts are not enriched.",
    )
    gemini_model: str = Field(default="gemini-2.5-pro", description="Gemini model asked for conflict analyses.")
    gemini_base_url: str | None = Field(
        default=None, description="Override of the Gemini API base URL (proxies, tests)."
    )
    gemini_min_risk: float = Field(
        default=0.7, ge=0, le=1, description="Risk from which a prediction is sent to Gemini."
    )
    gemini_timeout_s: float = Field(default=20.0, gt=0, description="Timeout of one Gemini request.")
    gemini_max_concurrency: int = Field(default=4, ge=1, description="Gemini requests in flight at most.")
    gemini_max_pending: int = Field(
        default=64, ge=1, description="Enrichments waiting at most; beyond it they are shed."
    )
    gemini_max_attempts: int = Field(
        default=3, ge=1, description="Attempts per analysis (retries only on 429 and 5xx)."
    )
    gemini_backoff_s: float = Field(
        default=0.5, gt=0, description="Base of the jittered exponential backoff between attempts."
    )
    gemini_cache_size: int = Field(default=256, ge=0, description="Analyses cached by situation.")
    gemini_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failed analyses that open the circuit breaker."
    )
    gemini_breaker_reset_s: float = Field(
        default=30.0, gt=0, description="Seconds the breaker stays open before one trial request."
    )
    # --- quarantine processor -------------------------------------------------------------
    quarantine_trust_threshold: float = Field(
        default=30.0, ge=0, le=100, description="Trust below which an agent is quarantined."
    )
    quarantine_release_trust: float = Field(
        default=50.0, ge=0, le=100, description="Trust an agent needs to be released at term end."
    )
    quarantine_conflict_risk: float = Field(
        default=0.7, ge=0, le=1, description="Conflict risk above which its aggressor is quarantined."
    )
    quarantine_base_term_s: float = Field(
        default=30.0, gt=0, description="Event-time length of a first quarantine term."
    )
    quarantine_term_multiplier: float = Field(
        default=2.0, ge=1, description="Term growth per earlier offense (repeat offenders)."
    )
    quarantine_max_term_s: float = Field(default=600.0, gt=0, description="Longest quarantine term.")
    quarantine_fleet_cap: float = Field(
        default=0.2, ge=0, le=1, description="Share of the active fleet policy may quarantine."
    )
    quarantine_active_window_s: float = Field(
        default=120.0, gt=0, description="Agents seen within this event time count as active."
    )
    quarantine_release_on_recovery: bool = Field(
        default=True,
        description="Release only on a verified recovery (immune.recovery) or an operator's command; "
        "false: when the term is over and trust recovered.",
    )

    # --- processor runtime (issue 4) ---
    app_id_suffix: str = Field(
        default="", description="Appended to each processor's app id / consumer group (isolated test or bench runs)."
    )
    consumer_auto_offset_reset: str = Field(
        default="earliest", description="Where a processor's new consumer group starts: earliest or latest."
    )
    batch_max_events: int = Field(default=2000, ge=1, description="Most events a processor takes in one batch.")
    batch_within_s: float = Field(
        default=0.1, gt=0, description="Longest wait for a batch to fill, in seconds (adds at most this to latency)."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        description="Prometheus /metrics port of this process; unset = the processor's default, 0 = off.",
    )
    web_port: int | None = Field(
        default=None, ge=1, description="Port of Faust's own web server; unset = Faust web off."
    )
    startup_timeout_s: float = Field(
        default=0.0, ge=0, description="Give up waiting for Kafka/Redis at start-up after this long; 0 = wait forever."
    )
    retry_max_backoff_s: float = Field(
        default=5.0, gt=0, description="Longest pause between retries of a transient Redis or Kafka error."
    )
    history_cap: int = Field(default=200, ge=1, description="Entries kept in each agent's history list in Redis.")
    dedupe_ids: int = Field(
        default=32, ge=0, description="Recent event ids kept per entity to drop duplicates at new offsets; 0 = off."
    )
    log_json: bool = Field(default=True, description="JSON log lines (false: plain text, for a terminal).")
    consumer_engine: Literal["confluent", "faust"] = Field(
        default="confluent",
        description="Hot-path consumer: confluent (librdkafka batches inside the Faust app) or faust (take_events).",
    )
    state_cache_entities: int = Field(
        default=20000, ge=0, description="Parsed entity states kept in memory between batches (LRU); 0 = off."
    )
    max_clock_skew_s: float = Field(
        default=30.0,
        ge=0,
        description="An event dated more than this ahead of its broker timestamp is dead-lettered (never moves time).",
    )
    max_event_age_s: float = Field(
        default=10 * 365.25 * 86400,
        ge=0,
        description="An event dated more than this before its broker timestamp is dead-lettered; 0 = no bound "
        "(replays of older recordings).",
    )
    health_stall_s: float = Field(
        default=60.0,
        gt=0,
        description="Liveness fails when a batch has been in flight this long, or the consume loop has not turned.",
    )
    lag_interval_s: float = Field(
        default=10.0, gt=0, description="How often `chorus exporter` reads the consumer groups' lag from Kafka."
    )
    merge_max_wait_s: float = Field(
        default=0.05,
        ge=0,
        description="Longest a processor holds events while one of its input partitions still has unread data "
        "(the ordering rule's bound; past it the events are applied in order without that input).",
    )
    hold_until_key: str | None = Field(
        default=None,
        description="Redis key that must exist before the processor applies any event of its own sources "
        "(chorus replay runs the processors in dependency order with it); unset = apply at once.",
    )
    group_instance_id: str | None = Field(
        default=None,
        description="Static consumer-group membership id: a restarted worker with the same id gets its "
        "partitions back without a rebalance (unset = dynamic membership).",
    )
    consumer_session_timeout_ms: int = Field(
        default=10000,
        ge=6000,
        description="Consumer-group session timeout: how long a dead worker keeps its partitions.",
    )
    producer_linger_ms: float = Field(
        default=2.0,
        ge=0,
        description="How long the confluent producer of outputs waits to fill a request, in ms (each batch ends "
        "with a flush, which sends at once: not on a decision's path).",
    )

    # --- baseline processor ---
    baseline_warmup_samples: int = Field(default=15, ge=2, description="Samples learned before detection starts.")
    baseline_window: int = Field(
        default=1000, ge=2, description="Effective memory of the running mean/variance, in samples."
    )
    baseline_fast_alpha: float = Field(
        default=0.3, gt=0, le=1, description="Weight of the newest sample in the short-memory level (the jump channel)."
    )
    baseline_tail_u: float = Field(
        default=2.0, gt=0, description="|z| past which a sample counts towards a channel's learned tail."
    )
    baseline_tail_alpha: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="Weight of the newest excess in a tail's mean excess (an average over ~2/alpha exceedances).",
    )
    baseline_clip: float = Field(
        default=3.0, gt=0, description="Deviating samples are learned winsorised to this many standard deviations."
    )
    baseline_surprise: float = Field(
        default=3.0, gt=0, description="-log10 of the tail probability at which a sample deviates."
    )
    baseline_spike_surprise: float = Field(
        default=5.0, gt=0, description="Surprise at which a single sample raises an anomaly at once."
    )
    baseline_sustain_samples: int = Field(
        default=2, ge=1, description="Deviating samples (gaps of up to baseline_gap_samples allowed) that raise an anomaly."
    )
    baseline_gap_samples: int = Field(
        default=2, ge=0, description="Normal samples a deviation may dip back for before it is over (noisy shifts)."
    )
    baseline_clear_samples: int = Field(
        default=5, ge=1, description="Consecutive normal samples that end an anomaly (and unfreeze the baseline)."
    )
    baseline_severity_surprise: tuple[float, float, float] = Field(
        default=(6.0, 10.0, 20.0), description="Surprise from which an anomaly is medium, high, critical (else low)."
    )
    baseline_relearn_samples: int = Field(
        default=300, ge=2, description="Deviating this many samples without a quarantine is a new normal: re-learn."
    )
    baseline_min_stddev: float = Field(
        default=0.01, gt=0, description="Floor of the standard deviation, absolute (flat metrics stay sane)."
    )
    baseline_min_rel_stddev: float = Field(
        default=0.05, ge=0, description="Floor of the standard deviation relative to |mean|."
    )
    baseline_snapshot_every: int = Field(
        default=50, ge=1, description="Publish a baseline snapshot every N samples (and on every state change)."
    )
    baseline_suppress_samples: int = Field(
        default=30, ge=0, description="After a report, a new episode no more severe is not re-announced for N samples."
    )
    baseline_seen_before: int = Field(
        default=2, ge=1, description="A deviation no larger than this many earlier ones in the window is not news."
    )
    baseline_bursts: int = Field(default=8, ge=1, description="Deviation peaks remembered per metric.")
    baseline_season_bucket_s: int = Field(
        default=1800, ge=0, description="Seasonal profile: time-of-day bucket width in seconds of event time (0: off)."
    )
    baseline_season_days: int = Field(
        default=3, ge=1, description="Distinct days a time-of-day bucket must have seen before it is used."
    )
    baseline_season_window: int = Field(
        default=64, ge=2, description="Effective memory of a time-of-day bucket, in samples."
    )
    baseline_season_sustain: int = Field(
        default=6, ge=1, description="Samples in a row the seasonal channel alone must find surprising to count."
    )
    baseline_season_normal: float = Field(
        default=2.0, gt=0, description="|z| against the time-of-day profile under which a sample is not news."
    )

    # --- trust processor ---
    trust_policy_file: str | None = Field(
        default=None, description="YAML or JSON file with the TrustPolicy; unset = defaults plus CHORUS_TRUST_POLICY."
    )
    trust_policy: str | None = Field(
        default=None, description="TrustPolicy overrides as a JSON object (applied over the file)."
    )
    # --- signed operator commands ---------------------------------------------------------
    operator_key: str | None = Field(
        default=None, description="File of the operator's Ed25519 private key (PEM), used by `chorus command`."
    )
    operator_public_keys: str | None = Field(
        default=None,
        description="Comma-separated files of trusted operator public keys; unset = every command is refused.",
    )
    command_max_age_s: float = Field(
        default=300.0, gt=0, description="A command older than this (signing time to broker time) is refused."
    )
    # --- healing processor ---
    healing_policy: str | None = Field(
        default=None,
        description="HealingPolicy overrides as a JSON object (action lists per condition, severe conditions, "
        "timeouts, verification); unset = the policy's defaults.",
    )

    # --- agent SDK (chorus.agent) and HTTP ingest (chorus ingest) --------------------------
    agent_gate_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a gated intend() waits for the gate's verdict before GateTimeout."
    )
    agent_start_timeout_s: float = Field(
        default=30.0, gt=0, description="How long an agent client waits at start to read its quarantine decisions."
    )
    agent_vitals_tick_s: float = Field(
        default=1.0, gt=0, description="Seconds between the Vitals an SDK agent publishes from its measured calls."
    )
    agent_queue_max: int = Field(
        default=10000, ge=1, description="Messages an agent client buffers unsent at most; beyond it, BufferFull."
    )
    agent_linger_ms: float = Field(
        default=1.0, ge=0, description="How long the agent client's and the ingest's producer wait to fill a request, in ms."
    )
    ingest_host: str = Field(default="127.0.0.1", description="Address `chorus ingest` listens on.")
    ingest_port: int = Field(default=8500, ge=1, le=65535, description="Port `chorus ingest` listens on.")
    ingest_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description='Per-agent bearer tokens of the HTTP ingest, JSON {"agent-id": "token"}.'
    )
    ingest_tokens_file: str | None = Field(
        default=None, description="JSON or YAML file with more per-agent ingest tokens (agent id -> token)."
    )
    ingest_queue_max: int = Field(
        default=10000, ge=1, description="Events the ingest holds unacknowledged by Kafka at most; beyond: 429."
    )
    ingest_retry_after_s: int = Field(default=1, ge=1, description="Retry-After of the ingest's 429 answers.")
    ingest_max_batch: int = Field(default=1000, ge=1, description="Events one ingest POST may carry at most.")
    ingest_poll_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait of one long-poll on GET /v1/agents/{id}/verdicts."
    )
    ingest_verdicts_kept: int = Field(
        default=256, ge=1, description="Recent verdicts and decisions the ingest keeps per agent for pollers."
    )

    # --- simulator ------------------------------------------------------------------------
    sim_broker_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds `chorus simulate` waits for the Kafka broker before giving up."
    )
    # --- operator API and dashboard (chorus api) ---------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Address `chorus api` listens on.")
    api_port: int = Field(default=8400, ge=1, le=65535, description="Port of `chorus api` and its dashboard.")
    api_tokens: dict[str, ApiToken] = Field(
        default_factory=dict,
        description='Bearer tokens of the API, JSON: {"<token>": {"subject": "alice", "role": "operate"}}; '
        "roles: read, operate.",
    )
    api_write_rate_per_min: float = Field(
        default=60.0, gt=0, description="Writes (commands) one token subject may make per minute, sustained."
    )
    api_write_burst: int = Field(default=10, ge=1, description="Writes one subject may make in a burst.")
    api_feed_keepalive_s: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on an idle decision feed."
    )
