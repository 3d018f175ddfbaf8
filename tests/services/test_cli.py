"""The `packloop` command line: its root group and the README's command table."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import click

from services.cli import COMMANDS, cli

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    """Each `packloop …` usage of the README's command table, as its words."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands"):text.index("## Development")]
    usages = re.findall(r"`(packloop [^`]+)`", table)
    return [usage.replace("\\|", "|").split()[1:] for usage in usages]


def test_the_root_group_offers_exactly_the_listed_commands() -> None:
    """Commands are attached in one place (COMMANDS), not by importing a module."""
    assert sorted(cli.list_commands(click.Context(cli))) == sorted(c.name for c in COMMANDS)


def test_every_command_and_flag_of_the_readme_exists() -> None:
    """Every command path the README's table names resolves, and has the flags it shows."""
    checked = 0
    for words in readme_commands():
        path = [w.split("|") for w in itertools.takewhile(lambda w: w[0].islower(), words)]
        flags = {f for w in words for f in re.findall(r"--[a-z-]+", w)}
        for names in itertools.product(*path):
            command: click.Command = cli
            for name in names:
                assert isinstance(command, click.Group), names
                found = command.get_command(click.Context(command), name)
                assert found is not None, f"packloop {' '.join(names)}"
                command = found
            options = {o for p in command.params
                       for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}
            assert flags <= options, (names, flags - options)
            checked += 1
    assert checked >= 20
