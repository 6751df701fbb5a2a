"""Submit our VOEvents to a Comet broker over the VOEvent Transport Protocol (VTP).

A minimal VTP *author* client, as Comet's own ``comet-sendvo``
(``comet/protocol/sender.py``) behaves: open a TCP connection to the broker's
receive port, send the VOEvent as one message — a 4-byte big-endian (network order)
length followed by the XML bytes — then read one message back: a Transport
document (``trn:Transport``) whose ``role`` is ``ack`` or ``nak`` (a ``nak`` says
why in ``Meta/Result``). The broker closes the connection afterwards.

A broker that does not accept submissions from our address (Comet's author
whitelist) closes the connection without any reply: that is reported as
``refused``. A duplicate (Comet compares the bytes it has seen) is a ``nak``
("Previously seen by this broker").

Every document is checked first (:func:`publishers.voevent_check.check`: valid VOEvent
2.0, IVORN with a local ID, at most 99,999 bytes); an invalid one is never sent.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lxml import etree

from mm_broker.core.config import Settings
from mm_broker.core.errors import VTPError
from publishers.config import PublishConfig
from publishers.voevent import write_voevents
from publishers.voevent_build import VOEventDoc
from publishers.voevent_check import InvalidVOEvent, check

log = logging.getLogger("mm_broker.vtp")

#: Largest reply we accept from the broker (a Transport message is ~1 kB).
MAX_REPLY_BYTES = 1 << 20

Status = Literal["ack", "nak", "refused", "invalid", "error"]


@dataclass(frozen=True)
class Submission:
    """Outcome of submitting one VOEvent.

    Attributes
    ----------
    ivorn : str
        IVORN of the VOEvent (``""`` only if the document had none).
    status : {"ack", "nak", "refused", "invalid", "error"}
        ``ack``: accepted and relayed; ``nak``: rejected by the broker (``reason``);
        ``refused``: connection closed without a reply (address not whitelisted);
        ``invalid``: not sent, the document failed our checks; ``error``: transport
        failure (broker down, timeout).
    reason : str or None
        Why, for anything but ``ack``.
    seconds : float
        Time from connection to reply.
    """

    ivorn: str
    status: Status
    reason: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """True when the broker acknowledged the VOEvent."""
        return self.status == "ack"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; fewer only if the peer closed the connection."""
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _parse_reply(data: bytes) -> tuple[str, str | None]:
    """(role, reason) of a Transport message."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise VTPError(f"unreadable reply from the broker: {exc}") from exc
    role = root.get("role")
    if role is None:
        raise VTPError("reply without a role")
    return role, root.findtext("Meta/Result")


def submit(xml: bytes, host: str, port: int, *, timeout: float = 20.0) -> Submission:
    """Send one VOEvent to a VTP broker and wait for its ack or nak.

    Parameters
    ----------
    xml : bytes
        The VOEvent document.
    host, port : str, int
        The broker's receive address (``comet.host``, ``comet.receive_port``).
    timeout : float
        Seconds allowed for connecting and for the reply.

    Returns
    -------
    Submission
        Status ``ack``, ``nak`` or ``refused``.

    Raises
    ------
    InvalidVOEvent
        If the document fails :func:`publishers.voevent.check` (nothing is sent).
    VTPError
        If the broker cannot be reached, times out or answers nonsense.
    """
    ivorn = check(xml)
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            try:
                sock.sendall(struct.pack("!I", len(xml)) + xml)
                header = _recv_exact(sock, 4)
            except (ConnectionResetError, BrokenPipeError):
                header = b""
            if len(header) < 4:
                return Submission(ivorn, "refused", "the broker closed the connection without "
                                  "a reply (is this address on its author whitelist?)",
                                  time.monotonic() - t0)
            (length,) = struct.unpack("!I", header)
            if length > MAX_REPLY_BYTES:
                raise VTPError(f"reply of {length} bytes announced: not a VTP broker?")
            body = _recv_exact(sock, length)
            if len(body) < length:
                raise VTPError(f"reply cut short ({len(body)} of {length} bytes)")
    except TimeoutError as exc:
        raise VTPError(f"no reply from {host}:{port} within {timeout} s") from exc
    except OSError as exc:
        raise VTPError(f"cannot reach {host}:{port}: {exc}") from exc
    seconds = time.monotonic() - t0
    role, result = _parse_reply(body)
    if role == "ack":
        return Submission(ivorn, "ack", None, seconds)
    if role == "nak":
        return Submission(ivorn, "nak", result or "no reason given", seconds)
    raise VTPError(f"unexpected reply role {role!r} from {host}:{port}")


class VTPClient:
    """Broadcast our VOEvents through one VTP broker (our local Comet by default).

    Parameters
    ----------
    host, port : str, int
        Receive address of the broker.
    timeout : float
        Seconds per submission.
    """

    def __init__(self, host: str, port: int, timeout: float = 20.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: PublishConfig) -> VTPClient:
        """A client for ``comet.host:comet.receive_port`` with ``publish.vtp_timeout_s``."""
        return cls(config.comet_host, config.comet_port, config.vtp_timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> VTPClient:
        """A client configured from mm_broker's settings."""
        return cls.from_config(PublishConfig.from_settings(settings))

    def submit(self, xml: bytes) -> Submission:
        """:func:`submit` to this broker."""
        return submit(xml, self.host, self.port, timeout=self.timeout)

    def broadcast(self, docs: Iterable[VOEventDoc | bytes],
                  directory: str | Path | None = None) -> list[Submission]:
        """Submit each document; report every outcome, never stopping at a failure.

        Parameters
        ----------
        docs : iterable of VOEventDoc or bytes
        directory : path, optional
            Also write each document there (:func:`publishers.voevent.write_voevents`),
            whatever the broker answered.

        Returns
        -------
        list of Submission
            One per document, in order; ``invalid`` and ``error`` outcomes carry
            the reason instead of raising.
        """
        out = []
        for doc in docs:
            xml = doc.xml if isinstance(doc, VOEventDoc) else doc
            ivorn = doc.ivorn if isinstance(doc, VOEventDoc) else ""
            try:
                result = self.submit(xml)
            except InvalidVOEvent as exc:
                result = Submission(ivorn, "invalid", str(exc), 0.0)
            except VTPError as exc:
                result = Submission(ivorn, "error", str(exc), 0.0)
            if result.ok:
                log.debug("VOEvent %s acknowledged by %s:%d", result.ivorn, self.host, self.port)
            else:
                log.warning("VOEvent %s %s by %s:%d: %s", result.ivorn or "(no IVORN)",
                            result.status, self.host, self.port, result.reason)
            out.append(result)
            if directory is not None and isinstance(doc, VOEventDoc):
                write_voevents([doc], directory)
        return out
