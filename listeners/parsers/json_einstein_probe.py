"""Einstein Probe WXT alerts (``gcn.notices.einstein_probe.wxt.alert``).

What differs from the generic unified reader:

* real alerts carry no ``alert_type``, ``alert_tense``, ``record_number`` nor
  ``alert_datetime``: they read as an initial observation, version 1, issued at
  ``trigger_time`` (see :mod:`json_gcn_unified`);
* ``ra_dec_error`` is the 90 % radius *including* the systematic error (EP team's GCN
  circulars: "90% C.L. statistical and systematic"), so an absent
  ``systematic_included`` reads as true;
* the event id is ``EP:<id[0]>``; alerts of 2024 (e.g. EP240508) have no ``id``:
  the id is then built from the instrument and trigger time,
  ``EP:WXT-20240508T073801.151Z``, and ``extra["event_id_source"]`` says so.
  WXT sends one alert per transient, so this id is stable.
"""

from __future__ import annotations

from listeners.parsers.json_common import JSONObject, has, id_list, ident, load_json
from listeners.parsers.json_gcn_unified import MissionSpec, assemble, check_schema
from listeners.parsers.json_values import parse_time
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Messenger, Notice

#: Einstein Probe Wide-field X-ray Telescope alerts.
EP_WXT = MissionSpec(
    key="EP_WXT_ALERT",
    mission="Einstein Probe",
    instrument="WXT",
    messenger=Messenger.X,
    event_prefix="EP",
    schemas=("gcn/notices/einstein_probe/wxt/alert.schema.json",),
    topics=("gcn.notices.einstein_probe.wxt.alert",),
    convention="einstein_probe_wxt_90",
    systematic_included_default=True,
)


def parse(payload: bytes) -> Notice:
    """Parse an Einstein Probe WXT alert.

    Parameters
    ----------
    payload : bytes
        The JSON message.

    Returns
    -------
    Notice
        ``messenger=X``, a :class:`~mm_broker.core.models.Circle` with the 90 % radius.

    Examples
    --------
    >>> n = parse(b'{"instrument": "WXT", "trigger_time": "2026-04-09T11:45:11.949Z",'
    ...           b' "id": ["01709259773"], "ra": 184.664, "dec": -6.146,'
    ...           b' "ra_dec_error": 0.05174976}')
    >>> n.event_id, n.localisation.containment, n.localisation.convention
    ('EP:01709259773', 0.9, 'einstein_probe_wxt_90')
    """
    return from_doc(load_json(payload))


def from_doc(doc: JSONObject) -> Notice:
    """:func:`parse` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, EP_WXT)
    ids = id_list(doc, "id")
    if ids:
        return assemble(doc, EP_WXT, event_key=ids[0])
    if not has(doc, "trigger_time"):
        raise SchemaError("missing required key 'trigger_time'")
    t0 = parse_time(doc["trigger_time"], "trigger_time")
    instrument = ident(doc["instrument"], "instrument") if has(doc, "instrument") else "WXT"
    key = f"{instrument}-{t0.strftime('%Y%m%dT%H%M%S')}.{t0.microsecond // 1000:03d}Z"
    return assemble(
        doc,
        EP_WXT,
        event_key=key,
        trigger_time=t0,
        extra={"event_id_source": "instrument and trigger_time (alert has no id)"},
    )
