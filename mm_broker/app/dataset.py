"""Reading the shared real data set as the live streams sent it.

In ``triggers/lvk_notices/`` the data curators replaced each ``igwn.gwalert``'s base64
sky map by a text pointer to the decoded file under ``skymaps/gw/`` with its md5
(the maps are stored once). The live stream carried the map itself, so the replay
puts it back before the payload reaches the (strict) parser: the production ingest
path never does this, and a pointer reaching it is rejected as a bad sky map.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from mm_broker.core.errors import DatasetError

_POINTER = re.compile(r"\(removed by data helper: decoded bytes are (?P<path>\S+), "
                      r"md5 (?P<md5>[0-9a-f]{32})\)")


def restore_embedded_skymap(payload: bytes, data_dir: Path) -> bytes:
    """Return ``payload`` with a sky-map pointer replaced by the base64 map it names.

    Payloads without a pointer are returned unchanged (same bytes).

    Raises
    ------
    DatasetError
        If the named file is missing or its md5 differs.
    """
    if b"removed by data helper" not in payload:
        return payload
    doc = json.loads(payload)
    event = doc.get("event") or {}
    match = _POINTER.fullmatch(str(event.get("skymap", "")))
    if match is None:
        return payload
    path = data_dir / match["path"]
    if not path.is_file():
        raise DatasetError(f"sky map {path} named by the pointer is missing")
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() != match["md5"]:  # noqa: S324 - integrity, not security
        raise DatasetError(f"sky map {path} does not have md5 {match['md5']}")
    event["skymap"] = base64.b64encode(data).decode()
    return json.dumps(doc).encode()
