"""Configuration errors.

ConfigError      one or more settings are invalid; ``problems`` holds one line per problem
"""

from __future__ import annotations


class ConfigError(Exception):
    """The environment does not describe a runnable server; each problem is one clear line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
