"""KM3NeT neutrino alerts (``km3net/alert.schema.json``).

Particulars:

* the event id is ``KM3NeT:<event_name>`` (``KM3-YYMMDDX``, unique by construction);
  without ``event_name`` it falls back to ``KM3NeT:<id>`` — the published examples use
  small counters (``"1"``, ``"2"``) as ``id``, which are not safe across pipelines;
* ``ra_dec_error`` is the alert's circle at the schema default containment (0.9);
  ``src_error_50`` (the 50 % radius) is kept in ``extra``;
* ``far`` and ``p_value`` go to ``significance``; ``event_details`` (the individual
  neutrinos of a multiplet) and ``counterpart_info`` stay in ``extra``.

The Kafka topic is not confirmed by GCN yet; :data:`KM3NET_ALERT` lists the name that
GCN's convention gives (``gcn.notices.<mission>.<notice type>``).
"""

from __future__ import annotations

from listeners.parsers.json_common import JSONObject, id_list, load_json
from listeners.parsers.json_gcn_unified import MissionSpec, assemble, check_schema, first_id
from mm_broker.core.models import Messenger, Notice

#: KM3NeT ARCA/ORCA alerts.
KM3NET_ALERT = MissionSpec(
    key="KM3NET_ALERT",
    mission="KM3NeT",
    instrument="KM3NeT",
    messenger=Messenger.NU,
    event_prefix="KM3NeT",
    schemas=(
        "gcn/notices/km3net/alert.schema.json",
        "gcn/notices/km3net/km3net_alert.schema.json",
    ),
    topics=("gcn.notices.km3net.alert",),
)


def parse(payload: bytes) -> Notice:
    """Parse a KM3NeT alert.

    Examples
    --------
    >>> n = parse(b'{"mission": "KM3NeT", "messenger": "Neutrino", "instrument": "ORCA024",'
    ...     b' "id": "1", "event_name": "KM3-240901A", "trigger_time": "2024-09-01T01:16:47.0Z",'
    ...     b' "ra": 10.82, "dec": 20.01, "ra_dec_error": 0.9, "far": 8.029e-8}')
    >>> n.event_id, n.localisation.radius_deg, n.significance["far_hz"]
    ('KM3NeT:KM3-240901A', 0.9, 8.029e-08)
    """
    return from_doc(load_json(payload))


def from_doc(doc: JSONObject) -> Notice:
    """:func:`parse` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, KM3NET_ALERT)
    names = id_list(doc, "event_name")
    key = names[0] if names else first_id(doc)
    return assemble(doc, KM3NET_ALERT, event_key=key)
