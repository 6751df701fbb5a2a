"""Swift BAT-GUANO notices (``gcn.notices.swift.bat.guano``).

GUANO is the ground analysis of Swift BAT data around external triggers. Its notices
follow the unified schema with these particulars:

* the ``initial`` notice carries no localisation (GCN Circular 34926): it becomes
  :class:`~mm_broker.core.errors.NoPosition`; ``update`` notices carry either
  ``ra``/``dec``/``ra_dec_error`` (arcminute-scale, 90 %, systematic included) or a
  base64 HEALPix map in ``healpix_file``;
* the event id is ``Swift-GUANO:<id[0]>`` (the GUANO trigger id). The external
  trigger it follows (``follow_up_event``, e.g. ``"Fermi 694215970"``) is kept in
  ``extra`` and not merged: the GUANO region is a different localisation;
* ``classification`` (e.g. ``{"GRB": 1}``) and ``far`` go to ``significance``.
"""

from __future__ import annotations

from listeners.parsers.json_common import JSONObject, has, load_json
from listeners.parsers.json_gcn_unified import (
    MissionSpec,
    alert_type,
    assemble,
    check_schema,
    first_id,
)
from mm_broker.core.errors import NoPosition
from mm_broker.core.models import Messenger, Notice

#: Swift BAT-GUANO.
SWIFT_BAT_GUANO = MissionSpec(
    key="SWIFT_BAT_GUANO",
    mission="Swift",
    instrument="BAT-GUANO",
    messenger=Messenger.GRB,
    event_prefix="Swift-GUANO",
    schemas=("gcn/notices/swift/bat/Guano.schema.json",),
    topics=("gcn.notices.swift.bat.guano",),
    skymap_convention="swift_bat_guano_healpix",
)

#: Keys that make a GUANO notice localised.
_POSITION_KEYS = ("ra", "dec", "healpix_file", "healpix_url")


def parse_guano(payload: bytes) -> Notice:
    """Parse a Swift BAT-GUANO notice.

    Raises
    ------
    NoPosition
        An ``initial`` or ``update`` notice without any localisation.

    Examples
    --------
    >>> n = parse_guano(b'{"mission": "Swift", "instrument": "BAT-GUANO", "id": ["694215995"],'
    ...     b' "alert_type": "retraction", "record_number": 4,'
    ...     b' "trigger_time": "2022-12-31T21:46:05.13Z",'
    ...     b' "alert_datetime": "2023-01-01T03:24:36Z"}')
    >>> n.event_id, n.retraction, n.localisation
    ('Swift-GUANO:694215995', True, None)
    """
    return guano_from_doc(load_json(payload))


def guano_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_guano` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, SWIFT_BAT_GUANO)
    kind = alert_type(doc)
    if kind != "retraction" and not any(has(doc, key) for key in _POSITION_KEYS):
        raise NoPosition(f"GUANO {kind!r} notice carries no localisation (later updates do)")
    return assemble(doc, SWIFT_BAT_GUANO, event_key=first_id(doc))
