"""Pieces shared by the command-line tools (benchmark, collect, distill, study, serve)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to a flag's help only when it says something: never for a
    flag without a default (None or empty), an on/off switch, or help that already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (
            action.default is None
            or action.default in ([], {}, "", "{}", "[]")  # "nothing" says nothing
            or action.default is argparse.SUPPRESS
            or isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
            or "default" in help_text
        ):
            return action.help
        return super()._get_help_string(action)


class DeprecatedAlias(argparse.Action):
    """An old flag spelling: stores into the new flag's dest and prints a one-line notice."""

    def __init__(self, *args, new_flag: str = "", **kwargs) -> None:
        self.new_flag = new_flag
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import sys

        print(f"note: {option_string} is now {self.new_flag}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_alias(parser: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """A hidden old spelling ``old`` of the flag ``new`` (same dest; prints a notice when used)."""
    dest = new.lstrip("-").replace("-", "_")
    parser.add_argument(
        old, dest=dest, action=DeprecatedAlias, new_flag=new, help=argparse.SUPPRESS, **kwargs
    )


def add_max_turns(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--max-turns N`` (every tool's turn-cap flag) and its old spelling ``--max-steps``."""
    parser.add_argument("--max-turns", type=int, metavar="N", help=help_text)
    add_alias(parser, "--max-steps", "--max-turns", type=int)


def add_device(parser: argparse.ArgumentParser, help_text: str, default: str | None = None) -> None:
    """``--device``: where in-process models run (cpu, cuda, cuda:N or mps)."""
    parser.add_argument("--device", default=default, metavar="DEVICE", help=help_text)


def add_track(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--track {none,wandb}``: an experiment tracker beside the tool's own files."""
    from envs.tracking import TRACKERS

    parser.add_argument("--track", choices=TRACKERS, help=help_text)
