"""`autodo secret`: store the secrets agents use by handle (`secret:NAME`); values are never printed."""

from __future__ import annotations

import sys

import click

# app.py imports this module at its end, after defining these (the package always loads app first).
from autodo.cli.app import reports_errors
from autodo.config import Settings
from autodo.policy.secrets import remove_secret, secret_names, secrets_file, set_secret


@click.group("secret")
def secret_group() -> None:
    """Secrets for agent tools, referred to as secret:NAME; kept in a 0600 file in the home."""


secret: click.Group = secret_group  # typed for app.py, which mypy checks inside the import cycle


@secret.command("set")
@click.argument("name")
@reports_errors
def set_command(name: str) -> None:
    """Store NAME's value, read from stdin or a hidden prompt (never an argument: shells keep history)."""
    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")  # `echo … |` and files end with a newline that is not the secret
    home = Settings().home
    set_secret(home, name, value)
    click.echo(f"stored secret:{name} in {secrets_file(home)}; agents write secret:{name} where it belongs")


@secret.command("list")
@reports_errors
def list_command() -> None:
    """The names of the stored secrets, never their values."""
    names = secret_names(Settings().home)
    click.echo("\n".join(f"secret:{name}" for name in names) if names else "No secrets stored.")


@secret.command("rm")
@click.argument("name")
@reports_errors
def remove_command(name: str) -> None:
    """Forget NAME's value."""
    remove_secret(Settings().home, name)
    click.echo(f"removed secret:{name}")
