"""Errors that more than one room raises: configuration that cannot run."""


class ConfigError(Exception):
    """Configuration is invalid; the message lists every problem."""
