"""`mmsearch serve`: the server's command line, one flag per setting (each also an `MMSEARCH_*`
variable). The client's `mmsearch` command hands `serve` over to `main` here."""

from __future__ import annotations

import argparse
import sys
import typing

from .settings import Settings, SettingsError, describe_errors


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} (env MMSEARCH_{name.upper()}; default {field.default})"
        help_text = help_text.replace("%", "%%")  # argparse formats help: "+17%" broke --help
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else None
        parser.add_argument(flag, dest=name, default=None, choices=choices, help=help_text)


def build_parser(prog: str = "mmsearch serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run the server. Every flag is also an MMSEARCH_* variable."
    )
    add_settings_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from .app import StartupError, serve  # after parsing: --help needs neither gRPC nor the encoders
    from .security.keys import KeyFileError
    from .security.listener import ExposureError, ListenError
    from .security.tls import TLSConfigError

    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(**vars(args))
    except ValidationError as exc:  # a bad MMSEARCH_* variable or TOML value (flags are checked by argparse)
        print(f"mmsearch serve: {describe_errors(exc)}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"mmsearch serve: {exc}", file=sys.stderr)
        return 2
    try:
        serve(settings)
    # The operator's mistakes: said in one line, no traceback.
    except (KeyFileError, TLSConfigError, ExposureError, ListenError, StartupError) as exc:
        print(f"mmsearch serve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
