"""The operator's command line: `chorus --help`."""

from __future__ import annotations

import click

from . import (
    api_cmd,
    bench_cmd,
    command_cmd,
    demo_cmd,
    eval_cmd,
    explain_cmd,
    keys_cmd,
    schemas_cmd,
    simulate_cmd,
    stack_cmd,
    status_cmd,
    topics_cmd,
    watch_cmd,
    worker_cmd,
)


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
main.add_command(worker_cmd.worker)
main.add_command(bench_cmd.bench)
main.add_command(simulate_cmd.simulate)
main.add_command(demo_cmd.demo)
main.add_command(eval_cmd.eval_)
main.add_command(keys_cmd.keys)
main.add_command(command_cmd.command)
main.add_command(status_cmd.status)
main.add_command(explain_cmd.explain)
main.add_command(watch_cmd.watch)
main.add_command(api_cmd.api)

if __name__ == "__main__":
    main()
