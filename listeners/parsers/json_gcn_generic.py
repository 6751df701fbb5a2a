"""Any GCN core-schema notice: the fallback for ``gcn/notices/...`` schemas we have no
mission parser for.

GCN adds missions every few months (BurstCube, CHIME/FRB, DSA-110, ...); each new
schema is built from the same core blocks (``core/Alert``, ``core/Reporter``,
``core/Event``, ``core/DateTime``, ``core/Localization``, ``core/Statistics``). The
registry (:mod:`listeners.parsers.json_registry`) sends a document whose ``$schema``
is under ``gcn/notices/`` and is in none of its tables here, so the notice is read by
the core rules instead of being refused. Mission parsers, where they exist, win: the
table is consulted first, and the missions they know are never read by this module.

The generic convention (what is read, and what is assumed when a field is absent)
----------------------------------------------------------------------------------
``alert_type``, ``alert_tense``, ``record_number``, ``alert_datetime``, significance
    As for every unified notice (:mod:`listeners.parsers.json_gcn_unified`):
    ``retraction`` withdraws; ``current``/``archival`` -> observation,
    ``test``/``injection`` -> test; version = ``record_number`` (1 when absent).
mission, instrument
    ``mission`` and ``instrument`` of core/Reporter; when absent, the family table
    below (:data:`FAMILIES`), else the schema family (first folder under
    ``gcn/notices/``) in upper case.
event id
    ``<mission>:<first id>`` (``id`` of core/Event, a string or an array; required),
    spaces in the mission replaced by ``-``.
messenger
    :data:`FAMILIES` where the family is known; else core/Reporter ``messenger``:
    ``GW`` -> GW, ``Neutrino`` -> NU; ``EM`` or absent -> FRB when the notice is a
    radio one (a dispersion measure ``dm``, or ``MHz`` as ``spectral_band_units`` /
    ``units``), X when its ``spectral_band`` in keV ends at or below
    :data:`X_RAY_MAX_KEV`, GRB otherwise (most core-schema EM missions are gamma-ray
    monitors; the rule is written in ``extra["messenger_rule"]``).
localisation
    The core/Localization rules of :func:`~listeners.parsers.json_unified_localisation.
    localisation`: ``healpix_file`` (embedded map) first, then ``ra``/``dec`` with
    ``ra_dec_error`` (circle, ``[a, b]`` or ``[a, b, PA]`` ellipse) or the newer
    ``position_a_error``/``position_b_error``/``position_error_pa``; ``healpix_url``
    alone is a linked map (``SkyMap(data=None, url=...)``), fetched by ingest.
    ``healpix_url`` beside a position is also carried as :attr:`Notice.skymap_url`:
    the team's map, once fetched, wins over the circle.
containment
    ``containment_probability`` is read, never assumed from the mission; when it is
    absent the value is GCN's schema default, **0.9** (core/Localization:
    "if absent, default is 0.9"), and ``extra["containment_source"]`` says so.
systematic
    ``systematic_included`` is read; absent is the schema default ``false``. A generic
    mission publishes no separate systematic radius, so nothing is added: the radius
    is taken at its stated containment (convention ``gcn_unified_containment``), and
    ``extra["systematic_included"]`` keeps the flag as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from listeners.parsers.json_common import JSONObject, has, opt_list, opt_str
from listeners.parsers.json_gcn_unified import assemble, first_id
from listeners.parsers.json_unified_localisation import localisation
from listeners.parsers.json_unified_spec import MissionSpec
from listeners.parsers.json_values import doc_schema_path
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Messenger, Notice

#: Prefix of the ``$schema`` paths of GCN notices.
NOTICES_PREFIX = "gcn/notices/"

#: A spectral band ending at or below this energy (keV) is an X-ray notice.
X_RAY_MAX_KEV = 30.0


@dataclass(frozen=True)
class Family:
    """What we know of a schema family that the notices may not say.

    Attributes
    ----------
    mission, instrument : str
        Names when core/Reporter gives none.
    messenger : Messenger
    """

    mission: str
    instrument: str
    messenger: Messenger


#: Schema families (first folder under ``gcn/notices/``) read by the generic rules
#: whose messenger or names the notices do not carry. CHIME/FRB and DSA-110 notices
#: have no ``mission`` nor ``messenger`` (gcn-schema ``chime/frb.schema.json``,
#: ``dsa110/frb.schema.json``).
FAMILIES: dict[str, Family] = {
    "chime": Family("CHIME", "FRB", Messenger.FRB),
    "dsa110": Family("DSA-110", "DSA-110", Messenger.FRB),
    "burstcube": Family("BurstCube", "BurstCube", Messenger.GRB),
    "glowbug": Family("Glowbug", "Glowbug", Messenger.GRB),
    "gecam": Family("GECAM", "GRD", Messenger.GRB),
}

#: core/Reporter ``messenger`` -> ours, where it decides alone.
_REPORTED: dict[str, Messenger] = {"GW": Messenger.GW, "Neutrino": Messenger.NU}


def family_of(path: str) -> str:
    """The schema family: the first folder under ``gcn/notices/``.

    Examples
    --------
    >>> family_of("gcn/notices/chime/frb.schema.json")
    'chime'
    """
    rest = path.removeprefix(NOTICES_PREFIX)
    return rest.split("/", 1)[0] if "/" in rest else rest.split(".", 1)[0]


def _is_radio(doc: Mapping[str, Any]) -> bool:
    units = {opt_str(doc, key) for key in ("spectral_band_units", "units")}
    return has(doc, "dm") or "MHz" in units


def _band_top_kev(doc: Mapping[str, Any]) -> float | None:
    band = opt_list(doc, "spectral_band")
    unit = opt_str(doc, "spectral_band_units") or opt_str(doc, "units") or "keV"
    if unit != "keV" or not band or len(band) != 2:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in band):
        raise SchemaError("spectral_band must be two numbers")
    return float(max(band))


def messenger_of(doc: Mapping[str, Any], family: str) -> tuple[Messenger, str]:
    """Our messenger for a generic notice, and the rule that chose it.

    Raises
    ------
    SchemaError
        A ``messenger`` outside core/Reporter's vocabulary.
    """
    if family in FAMILIES:
        return FAMILIES[family].messenger, f"family table ({family})"
    given = opt_str(doc, "messenger")
    if given is not None and given not in ("EM", *_REPORTED):
        raise SchemaError(f"messenger {given[:40]!r} is not one of EM, GW, Neutrino")
    if given in _REPORTED:
        return _REPORTED[given], f"messenger {given}"
    if _is_radio(doc):
        return Messenger.FRB, "EM radio notice (dm or MHz band)"
    top = _band_top_kev(doc)
    if top is not None and top <= X_RAY_MAX_KEV:
        return Messenger.X, f"EM notice, spectral band up to {top:g} keV"
    return Messenger.GRB, "EM notice without radio or X-ray band: GRB"


def _position_errors(doc: JSONObject) -> JSONObject:
    """The document with ``position_a_error``/``_b_error``/``_error_pa`` written as an
    ``ra_dec_error`` (the newer core/Localization spelling of the same ellipse)."""
    if has(doc, "ra_dec_error") or not has(doc, "position_a_error"):
        return doc
    error: list[Any] = [doc["position_a_error"]]
    if has(doc, "position_b_error"):
        error += [doc["position_b_error"], doc.get("position_error_pa", 0)]
    return {**doc, "ra_dec_error": error}


def spec_for(doc: JSONObject, path: str) -> tuple[MissionSpec, dict[str, Any]]:
    """The :class:`MissionSpec` the generic rules build for one document, and the
    notes they add to ``extra``."""
    family = family_of(path)
    known = FAMILIES.get(family)
    mission = opt_str(doc, "mission") or (known.mission if known else family.upper())
    instrument = opt_str(doc, "instrument") or (known.instrument if known else mission)
    messenger, rule = messenger_of(doc, family)
    notes: dict[str, Any] = {"parser": "gcn_core_generic", "messenger_rule": rule}
    if not has(doc, "containment_probability"):
        notes["containment_source"] = (
            "GCN core schema default 0.9 (containment_probability absent)")
    spec = MissionSpec(
        key=f"{family.upper()}_{path.rsplit('/', 1)[-1].split('.', 1)[0].upper()}",
        mission=mission,
        instrument=instrument,
        messenger=messenger,
        event_prefix=mission.replace(" ", "-"),
        schemas=(path,),
    )
    return spec, notes


def from_doc(doc: JSONObject) -> Notice:
    """Read a decoded core-schema notice by the generic convention (module docstring).

    Raises
    ------
    SchemaError
        No ``$schema`` under ``gcn/notices/``, no ``id`` or ``trigger_time``, or
        values of the wrong kind.
    NoPosition, BadCoordinates, BadSkyMap
        From the localisation.

    Examples
    --------
    >>> n = from_doc({"$schema": "https://gcn.nasa.gov/schema/v6.1.0/gcn/notices/"
    ...               "chime/frb.schema.json", "alert_type": "initial", "id": "42",
    ...               "trigger_time": "2024-09-18T07:19:10Z", "ra": 346.8, "dec": 12.6,
    ...               "ra_dec_error": [0.5, 0.6, 0], "dm": 279.4})
    >>> n.event_id, str(n.messenger), n.localisation.containment, n.notice_type
    ('CHIME:42', 'FRB', 0.9, 'CHIME_FRB_INITIAL')
    """
    path = doc_schema_path(doc)
    if path is None or not path.startswith(NOTICES_PREFIX):
        raise SchemaError("the generic GCN parser reads documents with a gcn/notices/ $schema")
    spec, notes = spec_for(doc, path)
    located = _position_errors(doc)
    return assemble(doc, spec, event_key=first_id(doc),
                    locate=lambda: localisation(located, spec), extra=notes)


__all__ = ["FAMILIES", "Family", "family_of", "from_doc", "messenger_of", "spec_for"]
