"""The `autodo` command line."""

from autodo.cli.app import main

__all__ = ["main"]
