"""GCN unified JSON schema (nasa-gcn/gcn-schema): the shared reader and generic missions.

Every new-GCN JSON notice is built from the same core blocks (``core/Alert``,
``core/Event``, ``core/Localization``, ``core/Reporter``, ``core/Statistics``,
``core/DateTime``). This module reads them once:

* :class:`MissionSpec` — the facts about one mission's notices, as data: Kafka topics,
  ``$schema`` paths, messenger, error convention, containment and systematic defaults;
* :func:`assemble` — a decoded unified document plus a spec to a
  :class:`~mm_broker.core.models.Notice`;
* :func:`localisation` — ``ra``/``dec``/``ra_dec_error`` (radius or ``[a, b, PA]``),
  ``healpix_file`` (base64 FITS), ``healpix_url``, MAXI's
  ``rectangular_error_corners``;
* :func:`significance` — ``far``, ``p_astro``, ``signalness``, ``classification``, ...

(the mission facts, :class:`MissionSpec`, live in :mod:`json_unified_spec`, the
localisation reader in :mod:`json_unified_localisation`; both are re-exported here)
and parses the missions whose notices need nothing beyond the core: Fermi GBM
triggers, MAXI GSC and SVOM triggers. The missions with their own rules have their own
modules (:mod:`json_einstein_probe`, :mod:`json_icecube`, :mod:`json_swift`,
:mod:`json_km3net`, :mod:`json_superk`), built on the same functions.

Rules common to all unified notices
-----------------------------------
``alert_type``
    ``initial``/``update``/``retraction``; absent is read as ``initial`` (Einstein
    Probe sends none). ``retraction`` gives ``retraction=True``, ``localisation=None``.
``alert_tense`` -> role
    ``current`` and ``archival`` -> observation; ``test``, ``injection`` -> test;
    ``planned``, ``commanded`` -> utility; absent -> observation.
``version``
    ``record_number`` (the producer's sequence within the trigger); absent -> 1.
``issue_time``
    ``alert_datetime``; absent -> ``trigger_time`` (recorded in
    ``extra["issue_time_source"]``; the ingest layer may prefer the reception time).
``notice_type``
    ``<MISSION KEY>_<ALERT TYPE>``, e.g. ``SWIFT_BAT_GUANO_UPDATE``.
localisation, in order of preference
    retraction -> ``None``; ``healpix_file`` -> :class:`SkyMap` with the decoded
    bytes (nothing to fetch); ``ra``/``dec`` with ``ra_dec_error`` -> :class:`Circle` (a number or a
    one-element array) or :class:`Ellipse` (``[a, b]`` or ``[a, b, PA]``);
    ``ra``/``dec`` with ``rectangular_error_corners`` -> :class:`Box` bounding the
    rectangle; ``healpix_url`` alone -> :class:`SkyMap` with ``data=None``; else
    :class:`NoPosition`. ``healpix_url`` is always kept in ``extra``; when the map
    is not embedded it is also :attr:`Notice.skymap_url`, which ingest fetches (the
    team's map then wins over the circle).
containment
    ``containment_probability``, default 0.9 (schema default).
systematic
    ``systematic_included`` (default per mission, schema default ``false``). When it
    is false the circle takes the mission's ``convention_stat_only`` (Fermi GBM: the
    systematic model of :mod:`skymaps.conventions`), and :attr:`Circle.systematic_deg`
    carries the mission's systematic radius if its table gives one (none does today:
    no unified-schema mission publishes a separate systematic radius). The flag as
    given is kept in ``extra["systematic_included"]``.
event id
    ``<mission prefix>:<first id>`` (Fermi-GBM, MAXI, SVOM, Swift-GUANO, Super-K);
    EP, IceCube and KM3NeT have their own rules in their modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from listeners.parsers.json_common import (
    JSONObject,
    has,
    id_list,
    ident,
    load_json,
    number_map,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
)
from listeners.parsers.json_unified_localisation import localisation
from listeners.parsers.json_unified_spec import (
    ALERT_TYPES,
    CONSUMED_KEYS,
    JSON_MESSENGER,
    TENSE_ROLE,
    MissionSpec,
)
from listeners.parsers.json_values import doc_schema_path, parse_time
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import (
    Localisation,
    Messenger,
    Notice,
    Role,
    SkyMap,
)

# --------------------------------------------------------------------------- #
# Mission tables for the generic missions
# --------------------------------------------------------------------------- #

#: Fermi GBM trigger notices (JSON). GBM radii are 1-sigma (0.68) statistical; the
#: ground/final positions say ``systematic_included: false``: the convention tells
#: :mod:`skymaps` to apply the GBM systematic model. No topic is confirmed yet.
FERMI_GBM = MissionSpec(
    key="FERMI_GBM_TRIGGER",
    mission="Fermi",
    instrument="GBM",
    messenger=Messenger.GRB,
    event_prefix="Fermi-GBM",
    schemas=("gcn/notices/fermi/gbm/trigger.schema.json",),
    convention="gcn_unified_containment",
    convention_stat_only="fermi_gbm_1sigma_stat",
    skymap_convention="fermi_gbm_healpix",
)

#: Fermi GBM ``subtype`` -> convention of a statistical-only radius, naming the
#: systematic model :mod:`skymaps.conventions` applies (Connaughton et al. 2015 for
#: flight and ground positions, the RoboBA core + tail for final positions).
GBM_SUBTYPE_CONVENTION: dict[str, str] = {
    "FLIGHT_POSITION": "fermi_gbm_flight",
    "GROUND_POSITION": "fermi_gbm_ground",
    "FINAL_POSITION": "fermi_gbm_final",
}

#: MAXI GSC transients (known and unknown sources).
MAXI_GSC = MissionSpec(
    key="MAXI_GSC",
    mission="MAXI",
    instrument="GSC",
    messenger=Messenger.X,
    event_prefix="MAXI",
    schemas=(
        "gcn/notices/maxi/gsc.known.schema.json",
        "gcn/notices/maxi/gsc.unknown.schema.json",
    ),
    topics=("gcn.notices.maxi.gsc.known", "gcn.notices.maxi.gsc.unknown"),
)

#: SVOM ECLAIRs / GRM triggers (JSON; the live SVOM topics carry VOEvent XML).
SVOM_TRIGGER = MissionSpec(
    key="SVOM_TRIGGER",
    mission="SVOM",
    instrument="ECLAIRs",
    messenger=Messenger.GRB,
    event_prefix="SVOM",
    schemas=("gcn/notices/svom/trigger.schema.json",),
)


# --------------------------------------------------------------------------- #
# Reading the core blocks
# --------------------------------------------------------------------------- #


def check_schema(doc: Mapping[str, Any], spec: MissionSpec) -> str | None:
    """Check that a document's ``$schema`` (if any) belongs to ``spec``.

    Raises
    ------
    SchemaError
        ``$schema`` names another notice type.
    """
    path = doc_schema_path(doc)
    if path is not None and path not in spec.schemas:
        raise SchemaError(f"$schema {path!r} is not a {spec.mission} {spec.key} schema")
    return path


def alert_type(doc: Mapping[str, Any]) -> str:
    """``alert_type``, lower case; absent reads as ``initial``."""
    value = opt_str(doc, "alert_type")
    if value is None:
        return "initial"
    if value.lower() not in ALERT_TYPES:
        raise SchemaError(f"alert_type {value[:40]!r} is not one of {', '.join(ALERT_TYPES)}")
    return value.lower()


def role(doc: Mapping[str, Any]) -> Role:
    """Role from ``alert_tense`` (see :data:`TENSE_ROLE`); absent -> observation."""
    tense = opt_str(doc, "alert_tense")
    if tense is None:
        return Role.OBSERVATION
    try:
        return TENSE_ROLE[tense.lower()]
    except KeyError:
        raise SchemaError(
            f"alert_tense {tense[:40]!r} is not one of {', '.join(TENSE_ROLE)}"
        ) from None


def check_messenger(doc: Mapping[str, Any], spec: MissionSpec) -> None:
    """Refuse a ``messenger`` that contradicts the mission (e.g. ``EM`` for IceCube)."""
    given = opt_str(doc, "messenger")
    expected = JSON_MESSENGER[spec.messenger]
    if given is not None and given != expected:
        raise SchemaError(
            f"messenger {given[:40]!r} contradicts {spec.mission} (expected {expected!r})"
        )


def first_id(doc: Mapping[str, Any], key: str = "id") -> str:
    """The first trigger identifier of ``id`` (string or array of strings)."""
    ids = id_list(doc, key)
    if not ids:
        raise SchemaError(f"missing required key {key!r} (trigger identifier)")
    return ids[0]


def significance(doc: Mapping[str, Any], ctx: str = "") -> dict[str, Any]:
    """Significance figures of core/Statistics, where given.

    Returns
    -------
    dict
        Some of ``far_hz``, ``p_astro``, ``signalness``, ``p_value``,
        ``rate_snr``, ``image_snr``, ``classification``, ``properties``.

    Raises
    ------
    SchemaError
        Wrong types, a negative FAR or SNR, or a probability outside [0, 1].
    """
    out: dict[str, Any] = {}
    far = opt_number(doc, "far", ctx)
    if far is not None:
        if far < 0:
            raise SchemaError(f"far = {far:g} Hz is negative")
        out["far_hz"] = far
    for key in ("p_astro", "signalness", "p_value"):
        value = probability(doc, key, ctx)
        if value is not None:
            out[key] = value
    for key in ("rate_snr", "image_snr"):
        value = opt_number(doc, key, ctx)
        if value is not None:
            if value < 0:
                raise SchemaError(f"{key} = {value:g} is negative")
            out[key] = value
    for key in ("classification", "properties"):
        table = number_map(doc, key, ctx)
        if table is not None:
            out[key] = table
    return out


def probability(doc: Mapping[str, Any], key: str, ctx: str = "") -> float | None:
    """Optional probability / p-value in [0, 1]."""
    value = opt_number(doc, key, ctx)
    if value is not None and not 0.0 <= value <= 1.0:
        where = f"{ctx}.{key}" if ctx else key
        raise SchemaError(f"{where} = {value:g} is not a probability in [0, 1]")
    return value


# --------------------------------------------------------------------------- #
# Assembly
# --------------------------------------------------------------------------- #


def assemble(
    doc: JSONObject,
    spec: MissionSpec,
    *,
    event_key: str,
    locate: Callable[[], Localisation] | None = None,
    notice_base: str | None = None,
    version: int | None = None,
    role_override: Role | None = None,
    extra: Mapping[str, Any] | None = None,
    significance_extra: Mapping[str, Any] | None = None,
    trigger_time: datetime | None = None,
) -> Notice:
    """Build a :class:`Notice` from a decoded unified-schema document.

    Parameters
    ----------
    doc : dict
        The decoded notice.
    spec : MissionSpec
        The mission's facts.
    event_key : str
        Trigger identifier; the event id is ``f"{spec.event_prefix}:{event_key}"``.
    locate : callable, optional
        Returns the localisation; called only for non-retractions (default: the
        Localization block of ``doc`` itself, :func:`localisation`).
    notice_base : str, optional
        First part of ``notice_type`` (default ``spec.key``).
    version : int, optional
        Overrides the ``record_number`` rule.
    role_override : Role, optional
        A role that wins over ``alert_tense`` (e.g. mock LVK references).
    extra, significance_extra : mapping, optional
        Added to the Notice's ``extra`` / ``significance``.
    trigger_time : datetime, optional
        Overrides ``trigger_time`` (already parsed by the caller).

    Returns
    -------
    Notice
    """
    check_schema(doc, spec)
    check_messenger(doc, spec)
    kind = alert_type(doc)
    retraction = kind == "retraction"
    notice_role = role(doc)
    if role_override is not None and notice_role is Role.OBSERVATION:
        notice_role = role_override
    if trigger_time is not None:
        t0 = trigger_time
    elif has(doc, "trigger_time"):
        t0 = parse_time(doc["trigger_time"], "trigger_time")
    else:
        raise SchemaError("missing required key 'trigger_time'")
    notes: dict[str, Any] = {}
    if has(doc, "alert_datetime"):
        issued = parse_time(doc["alert_datetime"], "alert_datetime")
    else:
        issued = t0
        notes["issue_time_source"] = "trigger_time (no alert_datetime)"
    record = opt_int(doc, "record_number")
    if version is None:
        version = 1 if record is None else record
    sig = significance(doc)
    if significance_extra:
        sig.update(significance_extra)
    loc: Localisation | None = None
    if not retraction:
        loc = localisation(doc, spec) if locate is None else locate()
    instrument = ident(doc["instrument"], "instrument") if has(doc, "instrument") else None
    # The team's map, linked but not embedded: ingest fetches it and it wins over a
    # circle (Notice.skymap_url). An embedded map needs nothing fetched.
    url = opt_str(doc, "healpix_url")
    linked = url if url and not (isinstance(loc, SkyMap) and loc.data is not None) else None
    kept = {k: v for k, v in doc.items() if k not in CONSUMED_KEYS}
    kept.update(notes)
    if extra:
        kept.update(extra)
    return Notice(
        event_id=f"{spec.event_prefix}:{event_key}",
        messenger=spec.messenger,
        mission=spec.mission,
        instrument=instrument or spec.instrument,
        notice_type=f"{notice_base or spec.key}_{kind.upper()}",
        role=notice_role,
        trigger_time=t0,
        issue_time=issued,
        version=version,
        retraction=retraction,
        localisation=loc,
        significance=sig,
        extra=kept,
        skymap_url=None if retraction else linked,
    )


def parse_document(doc: JSONObject, spec: MissionSpec) -> Notice:
    """Parse a decoded document of a generic mission (event id from ``id``)."""
    check_schema(doc, spec)
    return assemble(doc, spec, event_key=first_id(doc))


# --------------------------------------------------------------------------- #
# Parsers (bytes -> Notice) of the generic missions
# --------------------------------------------------------------------------- #


def parse_fermi_gbm(payload: bytes) -> Notice:
    """Parse a Fermi GBM trigger notice (``fermi/gbm/trigger.schema.json``).

    ``subtype`` (``FLIGHT_POSITION``, ``GROUND_POSITION``, ``FINAL_POSITION``) names
    the notice type (``FERMI_GBM_GROUND_POSITION_UPDATE``) and, for a radius without
    systematic, the systematic model (:data:`GBM_SUBTYPE_CONVENTION`); without a
    known subtype the convention is ``fermi_gbm_1sigma_stat``.

    Examples
    --------
    >>> n = parse_fermi_gbm(b'{"mission": "Fermi", "instrument": "GBM", "id": ["745121685"],'
    ...     b' "alert_type": "update", "record_number": 5,'
    ...     b' "trigger_time": "2024-08-24T02:14:40.43",'
    ...     b' "ra": 92.17, "dec": -66.98, "ra_dec_error": 1.34, "containment_probability": 0.68,'
    ...     b' "systematic_included": false}')
    >>> n.event_id, n.version, n.localisation.convention, n.notice_type
    ('Fermi-GBM:745121685', 5, 'fermi_gbm_1sigma_stat', 'FERMI_GBM_TRIGGER_UPDATE')
    """
    return fermi_gbm_from_doc(load_json(payload))


def fermi_gbm_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_fermi_gbm` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    check_schema(doc, FERMI_GBM)
    subtype = (opt_str(doc, "subtype") or "").strip().upper()
    spec = FERMI_GBM
    if subtype in GBM_SUBTYPE_CONVENTION:
        spec = replace(FERMI_GBM, convention_stat_only=GBM_SUBTYPE_CONVENTION[subtype])
    base = f"FERMI_GBM_{subtype}" if subtype in GBM_SUBTYPE_CONVENTION else FERMI_GBM.key
    return assemble(doc, spec, event_key=first_id(doc), notice_base=base)



def parse_maxi_gsc(payload: bytes) -> Notice:
    """Parse a MAXI GSC notice (``maxi/gsc.known`` or ``maxi/gsc.unknown`` schema)."""
    return maxi_gsc_from_doc(load_json(payload))


def maxi_gsc_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_maxi_gsc` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    return parse_document(doc, MAXI_GSC)



def parse_svom_trigger(payload: bytes) -> Notice:
    """Parse an SVOM ECLAIRs/GRM JSON trigger (``svom/trigger.schema.json``)."""
    return svom_trigger_from_doc(load_json(payload))


def svom_trigger_from_doc(doc: JSONObject) -> Notice:
    """:func:`parse_svom_trigger` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    return parse_document(doc, SVOM_TRIGGER)



def opt_objects(doc: Mapping[str, Any], key: str) -> list[JSONObject]:
    """An optional array of objects (empty when absent)."""
    items = opt_list(doc, key) or []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise SchemaError(f"{key}[{index}] must be an object")
    return items


__all__ = [
    "FERMI_GBM",
    "MAXI_GSC",
    "SVOM_TRIGGER",
    "MissionSpec",
    "assemble",
    "first_id",
    "localisation",
    "parse_fermi_gbm",
    "parse_maxi_gsc",
    "parse_svom_trigger",
    "significance",
]
