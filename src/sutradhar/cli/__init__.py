"""The `sutradhar` command (`main`): serve, call, bench, calls."""

from sutradhar.cli.main import main

__all__ = ["main"]
