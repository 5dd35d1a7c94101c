"""`mmsearch serve` flags generated from the settings object, so each setting is a flag too."""

from __future__ import annotations

import argparse
import typing


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    # Imported here: only `serve` needs the server package.
    from mmsearch.server.settings import Settings

    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} (env MMSEARCH_{name.upper()}; default {field.default})"
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else None
        parser.add_argument(flag, dest=name, default=None, choices=choices, help=help_text)
