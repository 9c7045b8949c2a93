"""The operator's command line: `chorus --help`."""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute): each command's module is imported only when that command runs, so
# `chorus explain` does not pay for the bench's and the simulator's imports.
COMMANDS = {
    "stack": ("stack_cmd", "stack"),
    "topics": ("topics_cmd", "topics"),
    "schemas": ("schemas_cmd", "schemas"),
    "worker": ("worker_cmd", "worker"),
    "bench": ("bench_cmd", "bench"),
    "simulate": ("simulate_cmd", "simulate"),
    "demo": ("demo_cmd", "demo"),
    "eval": ("eval_cmd", "eval_"),
    "eval-detector": ("eval_detector_cmd", "eval_detector"),
    "keys": ("keys_cmd", "keys"),
    "command": ("command_cmd", "command"),
    "status": ("status_cmd", "status"),
    "explain": ("explain_cmd", "explain"),
    "watch": ("watch_cmd", "watch"),
    "api": ("api_cmd", "api"),
    "exporter": ("exporter_cmd", "exporter"),
    "alerts": ("alerts_cmd", "alerts"),
    "ingest": ("ingest_cmd", "ingest"),
    "record": ("record_cmd", "record"),
    "replay": ("replay_cmd", "replay_"),
    "diff": ("diff_cmd", "diff"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="chorus")
def main() -> None:
    """Chorus: an immune system for fleets of AI agents, on Kafka.

    Services come from KAFKA_BOOTSTRAP_SERVERS and REDIS_URL when set; otherwise
    `chorus stack up` starts a local Kafka broker and Redis server.
    """


if __name__ == "__main__":
    main()
