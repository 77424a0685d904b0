"""The `sutradhar` command (`main`): serve, call, bench, calls, dial, test."""

from sutradhar.cli.main import main

__all__ = ["main"]
