"""The operator's command line: `chorus --help`."""

from __future__ import annotations

import click

from . import schemas_cmd, stack_cmd, topics_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="chorus")
def main() -> None:
    """Chorus: an immune system for fleets of AI agents, on Kafka.

    Services come from KAFKA_BOOTSTRAP_SERVERS and REDIS_URL when set; otherwise
    `chorus stack up` starts a local Kafka broker and Redis server.
    """


main.add_command(stack_cmd.stack)
main.add_command(topics_cmd.topics)
main.add_command(schemas_cmd.schemas)
