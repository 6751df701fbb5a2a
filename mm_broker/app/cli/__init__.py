"""The ``mm-broker`` command line: one module per command.

Each command module has ``parser(p)``, which adds its arguments to the sub-parser
``p``, and ``main(args, settings)``, which runs it and returns the exit status
(ligo.skymap's ``parser()``/``main()`` pattern, as sub-commands of one program).
The table :data:`COMMANDS` is the one list of commands; only the module of the
command being run is imported, so ``mm-broker --help`` and light commands do not pay
for the Spark, sky-map and plotting imports of the heavy ones.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from sqlalchemy.exc import OperationalError

from mm_broker import __version__
from mm_broker.core import config as configmod

#: Command name → (module, one-line help). The order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "services": ("mm_broker.app.cli.services", "start, stop or inspect the local services"),
    "config": ("mm_broker.app.cli.config", "configuration"),
    "db": ("mm_broker.app.cli.db", "the store's schema (Alembic migrations)"),
    "notices": ("mm_broker.app.cli.notices", "notices: ingest files"),
    "alerts": ("mm_broker.app.cli.alerts", "alert streams: simulator and archive pipeline"),
    "listen": ("mm_broker.app.cli.listen", "run a notice daemon in the foreground"),
    "replay": ("mm_broker.app.cli.replay", "offline run of notices and alerts in time order"),
    "consume": ("mm_broker.app.cli.consume", "read counterparts as a user would"),
    "plot": ("mm_broker.app.cli.plot", "draw an event's region and candidates"),
    "run": ("mm_broker.app.cli.run", "the streaming service: alerts in, counterparts out"),
    "bench": ("mm_broker.app.cli.bench", "run one benchmark and print its figures as JSON"),
    "demo": ("mm_broker.app.cli.demo", "run the demo on the bundled real data"),
    "serve": ("mm_broker.app.cli.serve", "the portal and REST API"),
}


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (imported on demand)."""
    return importlib.import_module(COMMANDS[name][0])


def parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``mm-broker``.

    Parameters
    ----------
    commands : sequence of str, optional
        Commands whose own arguments are added (their modules are imported); the
        others are listed with their help only. Default: every command.
    """
    p = argparse.ArgumentParser(prog="mm-broker",
                                description="mm_broker, a multi-messenger counterpart broker.")
    p.add_argument("--version", action="version", version=f"mm-broker {__version__}")
    p.add_argument("--config", help="site configuration TOML (default: $MM_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = set(COMMANDS) if commands is None else set(commands)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name in wanted:
            command_module(name).parser(sp)
    return p


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first positional word), if any."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--config":
            skip = True
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mm-broker`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(words)
    args = parser([command] if command else []).parse_args(words)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = configmod.load(args.config)
    except configmod.ConfigError as exc:
        print(f"mm-broker: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(command_module(args.command).main(args, settings))
    except OperationalError as exc:  # the store is away or refuses us: one clear line
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"mm-broker: database unavailable: {reason}", file=sys.stderr)
        return 3
