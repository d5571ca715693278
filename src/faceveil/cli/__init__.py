"""The `faceveil` command. Thin: parses flags, plans paths, calls the library, prints.

`main` (entry point, exit codes, messages), `options` (the flags), `run` (run and render) and
one module per other subcommand."""

from .main import ExitCode, main, one_line
from .options import build_parser

__all__ = ["ExitCode", "build_parser", "main", "one_line"]
