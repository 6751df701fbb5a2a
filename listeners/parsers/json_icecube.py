"""IceCube notices: gold/bronze track alerts and the LVK neutrino track search.

Gold/bronze track alerts (``gcn.notices.icecube.gold_bronze_track_alerts``)
----------------------------------------------------------------------------
* event id ``IceCube:<run>_<event>``: the schema's ``id`` is ``["137840_57034692"]``
  in one example and ``["137840", "57034692"]`` in another, so all ``id`` elements
  are joined with ``_`` to give one id per neutrino;
* ``notice_type`` from ``pipeline``: ``ICECUBE_ASTROTRACK_GOLD``,
  ``ICECUBE_ASTROTRACK_BRONZE``, ``ICECUBE_CASCADE`` (the classic names), then the
  alert type;
* the localisation is the schema's circle (``ra_dec_error``, 90 %, convention
  ``icecube_90``). IceCube's earlier JSON wrote ``ra_uncertainty`` as an array
  (``uncertainty_shape: "circle"``, one value); that is read as the same circle.
  Asymmetric errors — ``ra_uncertainty`` and ``dec_uncertainty`` both
  ``[minus, plus]`` — become a :class:`~mm_broker.core.models.Box`;
* ``far``, ``p_astro``/``signalness`` go to ``significance``; ``nu_energy`` (TeV) to
  ``extra``.

LVK neutrino track search (``gcn.notices.icecube.lvk_nu_track_search``)
------------------------------------------------------------------------
IceCube's search for neutrinos around each LVK alert. It is an event of its own,
``IceCube-LVK:<superevent id>``, not merged with the GW event (its region is a
neutrino's, not the GW map):

* with coincident neutrinos, the localisation is the circle of the neutrino with the
  smallest ``event_pval_generic`` (all events stay in ``extra["coincident_events"]``);
  with none (``n_events_coincident = 0``, the usual case) the notice is an upper limit
  and raises :class:`~mm_broker.core.errors.NoPosition`;
* the superevent id comes from ``ref_ID`` or ``reference`` (whichever holds it: the
  example files swap them); the version is the LVK notice sequence number in the
  reference (``S230914ak-2-Preliminary`` -> 2), else 1;
* a mock/test superevent (``M``/``T`` prefix) makes the notice ``Role.TEST``;
* ``pval_generic``/``pval_bayesian`` and the chosen event's p-values go to
  ``significance``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from listeners.parsers.json_common import (
    JSONObject,
    as_number,
    check_probability,
    check_radius,
    has,
    id_list,
    load_json,
    opt_int,
    opt_list,
    opt_number,
    opt_obj,
    opt_str,
    req_number,
)
from listeners.parsers.json_gcn_unified import (
    MissionSpec,
    assemble,
    check_schema,
    localisation,
    opt_objects,
    probability,
)
from mm_broker.core.errors import NoPosition, SchemaError
from mm_broker.core.models import Box, Circle, Localisation, Messenger, Notice, Role
from mm_broker.core.position import check_position

#: Gold and bronze track alerts (and cascades, which share the single-neutrino schema).
GOLD_BRONZE = MissionSpec(
    key="ICECUBE_TRACK_ALERT",
    mission="IceCube",
    instrument="IC86",
    messenger=Messenger.NU,
    event_prefix="IceCube",
    schemas=(
        "gcn/notices/icecube/gold_bronze_track_alerts.schema.json",
        "gcn/notices/icecube/single_neutrino_alerts.schema.json",
        "gcn/notices/icecube/GoldAndBronze.schema.json",
    ),
    topics=("gcn.notices.icecube.gold_bronze_track_alerts",),
    convention="icecube_90",
    skymap_convention="icecube_healpix",
)

#: ``pipeline`` -> notice family (the classic GCN notice names).
PIPELINE_NOTICE: dict[str, str] = {
    "Gold Track Alert": "ICECUBE_ASTROTRACK_GOLD",
    "Bronze Track Alert": "ICECUBE_ASTROTRACK_BRONZE",
    "Cascade Alert": "ICECUBE_CASCADE",
}

#: The LVK neutrino track search.
LVK_NU_TRACK_SEARCH = MissionSpec(
    key="ICECUBE_LVK_NU_TRACK_SEARCH",
    mission="IceCube",
    instrument="IC86",
    messenger=Messenger.NU,
    event_prefix="IceCube-LVK",
    schemas=(
        "gcn/notices/icecube/lvk_nu_track_search.schema.json",
        "gcn/notices/icecube/LvkNuTrackSearch.schema.json",
        "gcn/notices/icecube/LVK_nu_track_search.schema.json",
    ),
    topics=("gcn.notices.icecube.lvk_nu_track_search",),
    convention="icecube_90",
)

_SUPEREVENT = re.compile(r"(?P<sid>[MT]?S\d{6}[a-z]{1,4})(?:-(?P<seq>\d{1,6})-[A-Za-z]+)?")


# --------------------------------------------------------------------------- #
# Localisation with IceCube's earlier array errors
# --------------------------------------------------------------------------- #


def _numbers(doc: Mapping[str, Any], key: str) -> list[float] | None:
    items = opt_list(doc, key)
    if items is None:
        return None
    return [as_number(v, f"{key}[{i}]") for i, v in enumerate(items)]


def icecube_localisation(doc: Mapping[str, Any], spec: MissionSpec) -> Localisation:
    """Localisation of an IceCube block: the schema's, or the earlier array form.

    Raises
    ------
    SchemaError
        ``ra_uncertainty`` of an unknown shape.
    """
    ra_unc = _numbers(doc, "ra_uncertainty")
    if ra_unc is None or has(doc, "ra_dec_error"):
        return localisation(doc, spec)
    ra, dec = check_position(req_number(doc, "ra"), req_number(doc, "dec"))
    given = opt_number(doc, "containment_probability")
    containment = (
        spec.containment_default
        if given is None
        else check_probability(given, "containment_probability")
    )
    dec_unc = _numbers(doc, "dec_uncertainty")
    if len(ra_unc) == 1 and dec_unc is None:
        shape = opt_str(doc, "uncertainty_shape")
        if shape not in (None, "circle"):
            raise SchemaError(f"uncertainty_shape {shape[:20]!r} with one value is not a circle")
        radius = check_radius(ra_unc[0], "ra_uncertainty[0]")
        return Circle(ra, dec, radius, containment, None, spec.convention)
    if len(ra_unc) == 2 and dec_unc is not None and len(dec_unc) == 2:
        ra_minus, ra_plus = (
            check_radius(abs(v), f"ra_uncertainty[{i}]") for i, v in enumerate(ra_unc)
        )
        dec_minus, dec_plus = (
            check_radius(abs(v), f"dec_uncertainty[{i}]") for i, v in enumerate(dec_unc)
        )
        return Box(ra, dec, ra_minus, ra_plus, dec_minus, dec_plus, containment, spec.convention)
    raise SchemaError(
        "ra_uncertainty/dec_uncertainty must be [radius] or two [minus, plus] pairs, got "
        f"{len(ra_unc)} and {'none' if dec_unc is None else len(dec_unc)} values"
    )


# --------------------------------------------------------------------------- #
# Gold / bronze
# --------------------------------------------------------------------------- #


def parse_gold_bronze(payload: bytes) -> Notice:
    """Parse an IceCube gold/bronze track (or cascade) alert.

    Examples
    --------
    >>> n = parse_gold_bronze(b'{"mission": "IceCube", "messenger": "Neutrino",'
    ...     b' "pipeline": "Bronze Track Alert", "id": ["137840", "57034692"],'
    ...     b' "alert_type": "initial", "trigger_time": "2023-04-16T05:22:26.150574Z",'
    ...     b' "ra": 345.82, "dec": 9.01, "ra_dec_error": 0.5, "p_astro": 0.34}')
    >>> n.event_id, n.notice_type, n.localisation.radius_deg
    ('IceCube:137840_57034692', 'ICECUBE_ASTROTRACK_BRONZE_INITIAL', 0.5)
    """
    return gold_bronze_from_doc(load_json(payload))


def gold_bronze_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_gold_bronze` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, GOLD_BRONZE)
    ids = id_list(doc, "id")
    if not ids:
        raise SchemaError("missing required key 'id' (IceCube run and event number)")
    pipeline = opt_str(doc, "pipeline")
    return assemble(
        doc,
        GOLD_BRONZE,
        event_key="_".join(ids),
        notice_base=PIPELINE_NOTICE.get(pipeline or "", GOLD_BRONZE.key),
        locate=lambda: icecube_localisation(doc, GOLD_BRONZE),
    )



# --------------------------------------------------------------------------- #
# LVK nu track search
# --------------------------------------------------------------------------- #


def _reference(doc: Mapping[str, Any]) -> tuple[str, int | None]:
    """Superevent id and LVK notice sequence number from ``ref_ID``/``reference``."""
    candidates: list[str] = []
    ref_id = opt_str(doc, "ref_ID")
    if ref_id is not None:
        candidates.append(ref_id)
    reference = opt_obj(doc, "reference")
    if reference is not None:
        candidates.extend(v for v in reference.values() if isinstance(v, str))
    sid: str | None = None
    seq: int | None = None
    for text in candidates:
        match = _SUPEREVENT.fullmatch(text.strip())
        if match is None:
            continue
        sid = sid or match["sid"]
        if match["seq"] is not None and seq is None:
            seq = int(match["seq"])
    if sid is None:
        raise SchemaError("missing LVK superevent id in 'ref_ID' or 'reference'")
    return sid, seq


def _best_event(events: list[JSONObject]) -> tuple[int, dict[str, float]]:
    """Index of the coincident neutrino with the smallest generic p-value, and its figures."""
    best, best_p = 0, math.inf
    for index, event in enumerate(events):
        pval = opt_number(event, "event_pval_generic", f"coincident_events[{index}]")
        if pval is not None and pval < best_p:
            best, best_p = index, pval
    figures: dict[str, float] = {}
    ctx = f"coincident_events[{best}]"
    event = events[best]
    for key in ("event_pval_generic", "event_pval_bayesian"):
        # The schema allows null p-values; one example even writes the string "null".
        if event.get(key) != "null":
            value = probability(event, key, ctx)
            if value is not None:
                figures[key] = value
    dt = opt_number(event, "event_dt", ctx)
    if dt is not None:
        figures["event_dt_s"] = dt
    return best, figures


def _event_block(event: JSONObject) -> JSONObject:
    block = opt_obj(event, "localization")
    return event if block is None else block


def parse_lvk_nu_track_search(payload: bytes) -> Notice:
    """Parse an IceCube LVK neutrino track search result.

    Raises
    ------
    NoPosition
        No coincident neutrino (an upper-limit notice).

    Examples
    --------
    >>> n = parse_lvk_nu_track_search(b'{"ref_ID": "S230914ak",'
    ...     b' "reference": {"gcn.notices.LVK.alert": "S230914ak-2-Preliminary"},'
    ...     b' "trigger_time": "2023-09-14T11:14:01Z", "n_events_coincident": 1,'
    ...     b' "coincident_events": [{"event_pval_generic": 0.02, "localization":'
    ...     b' {"ra": 17.48, "dec": 16.15, "ra_dec_error": 0.5}}]}')
    >>> n.event_id, n.version, n.localisation.ra
    ('IceCube-LVK:S230914ak', 2, 17.48)
    """
    return lvk_nu_track_search_from_doc(load_json(payload))


def lvk_nu_track_search_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_lvk_nu_track_search` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, LVK_NU_TRACK_SEARCH)
    sid, seq = _reference(doc)
    events = opt_objects(doc, "coincident_events")
    sig: dict[str, Any] = {}
    for key in ("pval_generic", "pval_bayesian"):
        value = probability(doc, key)
        if value is not None:
            sig[key] = value
    count = opt_int(doc, "n_events_coincident")
    if count is not None:
        sig["n_events_coincident"] = count
    best = 0
    if events:
        best, figures = _best_event(events)
        sig.update(figures)

    def locate() -> Localisation:
        if not events:
            raise NoPosition(
                f"no coincident neutrino for {sid} (n_events_coincident = "
                f"{'absent' if count is None else count}): upper limits only"
            )
        return icecube_localisation(_event_block(events[best]), LVK_NU_TRACK_SEARCH)

    return assemble(
        doc,
        LVK_NU_TRACK_SEARCH,
        event_key=sid,
        version=1 if seq is None else seq,
        role_override=Role.TEST if sid[0] in "MT" else None,
        locate=locate,
        significance_extra=sig,
        extra={"superevent_id": sid},
    )
