"""Super-Kamiokande supernova alerts (``gcn.notices.superk.sn_alert``).

A burst of low-energy neutrinos from a Galactic core-collapse supernova, with a
pointing from elastic scattering: ``ra_dec_error`` is given with its own
``containment_probability`` (0.68 in the published examples), systematic not stated.
``alert_tense: test`` notices are drills and become ``Role.TEST``. The luminosity
distance (kpc) and event counts stay in ``extra``. Event id ``Super-K:<id>``.
"""

from __future__ import annotations

from listeners.parsers.json_common import JSONObject, load_json
from listeners.parsers.json_gcn_unified import MissionSpec, parse_document
from mm_broker.core.models import Messenger, Notice

#: Super-Kamiokande SN alerts.
SUPERK_SN = MissionSpec(
    key="SUPERK_SN_ALERT",
    mission="Super-Kamiokande",
    instrument="SK",
    messenger=Messenger.NU,
    event_prefix="Super-K",
    schemas=("gcn/notices/superk/sn_alert.schema.json",),
    topics=("gcn.notices.superk.sn_alert",),
)


def parse(payload: bytes) -> Notice:
    """Parse a Super-Kamiokande supernova alert.

    Examples
    --------
    >>> n = parse(b'{"mission": "Super-Kamiokande", "messenger": "Neutrino",'
    ...     b' "id": "SN.095001.000001", "alert_tense": "test", "alert_type": "initial",'
    ...     b' "trigger_time": "2023-08-01T00:00:01.000000Z", "ra": 270.82, "dec": 31.46,'
    ...     b' "ra_dec_error": 0.91, "containment_probability": 0.68}')
    >>> n.event_id, n.role.value, n.localisation.containment
    ('Super-K:SN.095001.000001', 'test', 0.68)
    """
    return from_doc(load_json(payload))


def from_doc(doc: JSONObject) -> Notice:
    """:func:`parse` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    return parse_document(doc, SUPERK_SN)
