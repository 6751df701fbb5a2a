"""Start Comet's ``twistd comet`` with every listening socket bound to one address.

Comet 3.1 listens on all interfaces and has no option to choose one; its service
builds ``twisted.application.internet.TCPServer(port, factory)``. This launcher
replaces that name in :mod:`comet.service.broker` with a ``TCPServer`` bound to the
address given by ``--bind`` (default 127.0.0.1), then hands the remaining arguments
to ``twistd`` unchanged.

Usage: ``python -m mm_broker.app.services.comet_launcher --bind 127.0.0.1 -- <twistd args>``
"""

from __future__ import annotations

import functools
import sys


def main(argv: list[str] | None = None) -> None:
    """Patch Comet's listening sockets to ``--bind`` and run twistd."""
    args = list(sys.argv[1:] if argv is None else argv)
    bind = "127.0.0.1"
    if args[:1] == ["--bind"]:
        bind = args[1]
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]

    # Comet and twisted (heavy, with a reactor) are loaded only in the launched process.
    import comet.service.broker as broker
    from twisted.application import internet
    from twisted.scripts import twistd

    broker.TCPServer = functools.partial(internet.TCPServer, interface=bind)  # type: ignore[attr-defined]
    sys.argv = ["twistd", *args]
    twistd.run()


if __name__ == "__main__":
    main()
