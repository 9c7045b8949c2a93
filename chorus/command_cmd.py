"""`chorus command`: signed operator overrides, published to immune.commands."""

from __future__ import annotations

import getpass

import click
from pydantic import ValidationError

from processors.runtime import Settings
from processors.runtime.commands import issue_command
from processors.runtime.errors import BrokerUnavailable, KeyFileError, SecurityConfigError

# CLI verb -> OperatorCommand.command
VERBS = {"quarantine": "quarantine", "release": "release", "approve": "approve", "reject": "reject",
         "set-trust": "set_trust", "heal": "heal"}


@click.command("command")
@click.argument("verb", type=click.Choice(list(VERBS)))
@click.argument("agent")
@click.option("--value", type=float, default=None, help="The new trust score (set-trust only), 0-100.")
@click.option("--reason", required=True, help="Why: kept in the command and in the decisions it causes.")
@click.option("--operator", default=None, help="Your name in the audit trail (default: your login).")
@click.option("--run-id", default=None, help="The run the command is for (default: CHORUS_RUN_ID, live).")
def command(verb: str, agent: str, value: float | None, reason: str, operator: str | None, run_id: str | None) -> None:
    """Sign an operator command with CHORUS_OPERATOR_KEY and publish it.

    VERB is quarantine, release, approve, reject, set-trust or heal (an operator heals a held agent by hand;
    approve/reject also answer a healing waiting for approval). Trust, quarantine and healing act on it only
    if its signature verifies against a key in their CHORUS_OPERATOR_PUBLIC_KEYS, it reaches the
    broker within CHORUS_COMMAND_MAX_AGE_S of signing, and its nonce is new.
    """
    if (verb == "set-trust") != (value is not None):
        raise click.UsageError("--value is required for set-trust and not allowed otherwise")
    settings = Settings()
    try:
        signed = issue_command(
            settings,
            agent_id=agent,
            command=VERBS[verb],
            reason=reason,
            operator=operator or _login(),
            trust=value,
            run_id=run_id,
        )
    except (KeyFileError, BrokerUnavailable, SecurityConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid command: {exc.errors()[0]['msg']}") from exc
    click.echo(f"{verb} {agent}: published as {signed.event_id}, signed by key {signed.key_id}")


def _login() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    return "".join(name.split()) or "operator"
