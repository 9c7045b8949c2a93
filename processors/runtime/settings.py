"""The one settings model: every knob Chorus reads from the environment, with its default named once.

Variables are prefixed `CHORUS_` (for example `CHORUS_RUN_ID`); the service addresses
also answer to the conventional `KAFKA_BOOTSTRAP_SERVERS` and `REDIS_URL`.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


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
    run_id: str = Field(default="live", min_length=1, description="Run whose events the processors handle.")
    log_level: str = Field(default="INFO", description="Python log level name.")
