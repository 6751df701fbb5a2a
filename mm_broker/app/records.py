"""The published records: a counterpart from an association, a retraction of an event.

Both ``run`` and ``replay`` build their records here (through
:class:`mm_broker.app.flow.CounterpartFlow`), so the two paths publish the same
fields for the same association.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from coincidence.association import Association


def iso(t: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def counterpart_record(assoc: Association, extras: Mapping[str, Mapping[str, Any]],
                       trigger_ivorn: str | None, notice_ivorn: str | None,
                       significance: Mapping[str, Any], provenance: Mapping[str, Any],
                       ) -> dict[str, Any]:
    """An association's published record.

    Parameters
    ----------
    assoc : Association
    extras : mapping
        Per alert id, the alert's values a follow-up facility needs (photometry,
        classification, catalogue matches).
    trigger_ivorn, notice_ivorn : str or None
        IVORNs of the event's first notice and of the notice of this region version.
    significance : mapping
        The notice's significance figures (FAR, p_astro, …).
    provenance : mapping
        :meth:`mm_broker.core.provenance.Provenance.record_fields` of the run
        (``mm_broker_version``, ``config_hash``, ``catalogue_versions``,
        ``rule_versions``); its maps are copied into each record.

    Returns
    -------
    dict
        The contract fields, then the alert's values, the IVORNs, significance and
        provenance.
    """
    rec: dict[str, Any] = assoc.to_record()
    rec.update(extras.get(rec["alert_id"], {}))
    rec["trigger_ivorn"], rec["notice_ivorn"] = trigger_ivorn, notice_ivorn
    rec["significance"] = flat_significance(significance)
    rec.update({k: dict(v) if isinstance(v, dict) else v for k, v in provenance.items()})
    return rec


def flat_significance(significance: Mapping[str, Any]) -> dict[str, Any] | None:
    """Significance figures as an Avro map of scalars (nested maps flattened).

    Examples
    --------
    >>> flat_significance({"far_hz": 1e-9, "p_astro": {"BNS": 0.9, "BBH": 0.1}})
    {'far_hz': 1e-09, 'p_astro.BNS': 0.9, 'p_astro.BBH': 0.1}
    >>> flat_significance({}) is None
    True
    """
    out: dict[str, Any] = {}
    for k, v in significance.items():
        if isinstance(v, bool | int | float | str):
            out[str(k)] = v
        elif isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()
                        if isinstance(vv, bool | int | float | str)})
    return out or None


def retraction_record(*, event_id: str, messenger: str, mission: str, instrument: str,
                      role: str, notice_version: int, region_version: int,
                      trigger_time: datetime | None, retracted_at: datetime,
                      withdrawn_alert_ids: Iterable[str], trigger_ivorn: str | None,
                      notice_ivorn: str | None, provenance: Mapping[str, Any],
                      ) -> dict[str, Any]:
    """The record of an event retracted by its mission (``retraction-vN.avsc``).

    ``region_version`` is the event's last region version (0 if it never had one);
    ``withdrawn_alert_ids`` the candidates withdrawn by the retraction (may be empty:
    an event is announced as retracted whether or not it had candidates).
    A retraction names no alert: only the run's ``mm_broker_version`` and
    ``config_hash`` of ``provenance`` are kept.
    """
    return {"event_id": event_id, "messenger": messenger, "mission": mission,
            "instrument": instrument, "role": role, "notice_version": int(notice_version),
            "region_version": int(region_version),
            "trigger_time": None if trigger_time is None else iso(trigger_time),
            "retracted_at": iso(retracted_at),
            "withdrawn_alert_ids": sorted(set(withdrawn_alert_ids)),
            "reason": "retraction notice", "trigger_ivorn": trigger_ivorn,
            "notice_ivorn": notice_ivorn,
            "mm_broker_version": provenance.get("mm_broker_version"),
            "config_hash": provenance.get("config_hash")}
