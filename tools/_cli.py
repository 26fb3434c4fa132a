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
