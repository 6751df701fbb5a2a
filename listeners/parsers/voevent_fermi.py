"""Fermi GBM and LAT VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/Fermi``).

Facts used (tables below):

* GBM triggers: Alert (110) -> one or more Flight positions (111) -> Ground
  positions (112) -> Final position(s) (115).  All share the ``TrigID`` (MET
  seconds), so ``event_id = "Fermi-GBM:<TrigID>"``.
* Errors: GBM radii are 1-sigma (68.27 %) statistical radii; the GBM systematic is
  not in the notice and is applied by :mod:`skymaps.conventions` according to the
  stage: conventions ``fermi_gbm_flight``, ``fermi_gbm_ground``, ``fermi_gbm_final``
  (``systematic_deg`` stays ``None``).  Sub-threshold transients (131) give a
  1-sigma radius that already includes the systematic, and LAT radii are 90 %
  statistical (GCN Fermi mission page): both ``generic`` (containment as stated).
* Versions: ``stage * VERSION_STRIDE + Pkt_Ser_Num`` with stages Alert 0, Flight 1,
  Ground 2, Final 3.  ``Sequence_Num`` is not monotonic (the first Ground position
  has 56-59, later ones 0, 1, ...; Final positions have 0), so it is kept in
  ``extra`` only.  A Flight update that arrives after a Ground position gets a
  lower version on purpose: the ground localisation supersedes it.
* The GBM Alert (110) has no position (0,0 r=0, ``Coords_Type`` 0): it raises
  :class:`NoPosition` whose message names the event id.  LAT Monitor (125) gives a
  known source position with radius 0: :class:`NoPosition` by the shared rules.
* The flight classification (``Most_Likely_Index``) is decoded with the GBM table.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    ONE_SIGMA,
    Field,
    PacketSpec,
    build_notice,
    gcn_event_id,
    gcn_stage_version,
    read_fields,
    spec_for,
)
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_fermi"]

MISSION = "Fermi"

_GBM = "Fermi-GBM"
_LAT = "Fermi-LAT"
# Convention names are those of skymaps.conventions (which applies the GBM systematic
# model per stage); missions it does not name use "generic" (containment as stated).
_FLIGHT = "fermi_gbm_flight"
_GROUND = "fermi_gbm_ground"
_FINAL = "fermi_gbm_final"
_LAT_CONV = "generic"

# fmt: off
#: Fermi packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    110: PacketSpec(
        "FERMI_GBM_ALERT", "GBM", Messenger.GRB, stage=0, id_prefix=_GBM,
        no_position="the GBM Alert carries no localisation (0,0 r=0, Coords_Type 0)",
    ),
    111: PacketSpec(
        "FERMI_GBM_FLT_POS", "GBM", Messenger.GRB, stage=1,
        containment=ONE_SIGMA, convention=_FLIGHT, id_prefix=_GBM,
    ),
    112: PacketSpec(
        "FERMI_GBM_GND_POS", "GBM", Messenger.GRB, stage=2,
        containment=ONE_SIGMA, convention=_GROUND, id_prefix=_GBM,
    ),
    115: PacketSpec(
        "FERMI_GBM_FIN_POS", "GBM", Messenger.GRB, stage=3,
        containment=ONE_SIGMA, convention=_FINAL, id_prefix=_GBM,
    ),
    119: PacketSpec(
        "FERMI_GBM_POS_TEST", "GBM", Messenger.GRB, stage=1, test=True,
        containment=ONE_SIGMA, convention=_FLIGHT, id_prefix=_GBM,
    ),
    131: PacketSpec(
        "FERMI_GBM_SUBTHRESH", "GBM", Messenger.GRB, stage=0,
        containment=ONE_SIGMA, convention="generic",
        id_prefix="Fermi-GBM-subthreshold", id_param="Trans_Num",
    ),
    120: PacketSpec(
        "FERMI_LAT_POS_INI", "LAT", Messenger.GRB, stage=1,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
    121: PacketSpec(
        "FERMI_LAT_POS_UPD", "LAT", Messenger.GRB, stage=2,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
    122: PacketSpec(
        "FERMI_LAT_POS_DIAG", "LAT", Messenger.GRB, stage=3,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
    124: PacketSpec(
        "FERMI_LAT_POS_TEST", "LAT", Messenger.GRB, stage=1, test=True,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
    125: PacketSpec(
        "FERMI_LAT_MONITOR", "LAT", Messenger.GRB, stage=0,
        containment=0.9, convention=_LAT_CONV, id_prefix="Fermi-LAT-monitor",
    ),
    127: PacketSpec(
        "FERMI_LAT_GND", "LAT", Messenger.GRB, stage=4,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
    128: PacketSpec(
        "FERMI_LAT_OFFLINE", "LAT", Messenger.GRB, stage=5,
        containment=0.9, convention=_LAT_CONV, id_prefix=_LAT,
    ),
}
# fmt: on

#: GBM flight-software source classes (``Most_Likely_Index``, GCN Fermi notices).
GBM_CLASSES: dict[int, str] = {
    0: "error",
    1: "unreliable_location",
    2: "local_particles",
    3: "below_horizon",
    4: "GRB",
    5: "generic_SGR",
    6: "generic_transient",
    7: "distant_particles",
    8: "solar_flare",
    9: "Cyg_X-1",
    10: "SGR_1806-20",
    11: "GRO_J0422+32",
    19: "TGF",
}

_SIGNIFICANCE: dict[str, Field] = {
    "trigger_significance_sigma": ("Trig_Signif", None, "float"),
    "data_significance_sigma": ("Data_Signif", None, "float"),
    "burst_significance_sigma": ("Burst_Signif", None, "float"),
    "most_likely_probability_percent": ("Most_Likely_Prob", None, "float"),
    "second_most_likely_probability_percent": ("Sec_Most_Likely_Prob", None, "float"),
    "hardness_ratio": ("Hardness_Ratio", None, "float"),
    "def_not_a_grb": ("Def_NOT_a_GRB", "Trigger_ID", "bool"),
    "long_short": ("Long_short", "Trigger_ID", "str"),
    "reliability": ("Reliability", None, "int"),
    "spectral_class": ("Spectral_class", "Misc_Flags", "str"),
    "duration_class": ("Duration_class", "Misc_Flags", "str"),
    "temporal_test_statistic": ("Temp_Test_Stat", None, "float"),
    "image_test_statistic": ("Image_Test_Stat", None, "float"),
    "lat_monitor_significance": ("Signif", None, "float"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "sequence_num": ("Sequence_Num", None, "int"),
    "record_num": ("Record_Num", None, "int"),
    "phi_deg": ("Phi", None, "float"),
    "theta_deg": ("Theta", None, "float"),
    "trigger_timescale_s": ("Trig_Timescale", None, "float"),
    "data_timescale_s": ("Data_Timescale", None, "float"),
    "data_integration_s": ("Data_Integ", None, "float"),
    "duration_s": ("Trans_Duration", None, "float"),
    "lightcurve_url": ("LightCurve_URL", None, "str"),
    "location_map_url": ("LocationMap_URL", None, "str"),
    "healpix_url": ("HealPix_URL", None, "str"),
    "map_url": ("Map_URL", None, "str"),
    "source_name": ("SourceName", None, "str"),
    "test_submission": ("Test_Submission", "Trigger_ID", "bool"),
}


def _classification(event: VOEvent) -> dict[str, Any] | None:
    first = event.int_value("Most_Likely_Index")
    if first is None:
        return None
    second = event.int_value("Sec_Most_Likely_Index")
    out: dict[str, Any] = {"most_likely": GBM_CLASSES.get(first, f"class_{first}")}
    if second is not None:
        out["second_most_likely"] = GBM_CLASSES.get(second, f"class_{second}")
    return out


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed Fermi GBM/LAT VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    event_id = gcn_event_id(event, spec)
    significance = read_fields(event, _SIGNIFICANCE)
    classification = _classification(event)
    if classification is not None:
        significance["classification"] = classification
    extra = read_fields(event, _EXTRA)
    notice = build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=gcn_stage_version(event, spec),
        test=bool(event.bool_value("Test_Submission", "Trigger_ID")),
        significance=significance,
        extra=extra,
    )
    url = official_map_url(spec.notice_type, extra)
    return notice if url is None else replace(notice, skymap_url=url)


def official_map_url(notice_type: str, extra: dict[str, Any]) -> str | None:
    """The GBM team's HEALPix map of a notice, for ingest to fetch
    (:attr:`Notice.skymap_url`): ``HealPix_URL`` where given (sub-threshold
    notices); for a final position (``FERMI_GBM_FIN_POS``), the trigger's
    ``glg_healpix_all_bn<trigger>.fit``, which the GBM team publishes beside the
    light curve named by ``LightCurve_URL`` (``.../quicklook/``). ``LocationMap_URL``
    (``gbm_gnd_loc_map``) is not a HEALPix map and is not used.

    Examples
    --------
    >>> official_map_url("FERMI_GBM_FIN_POS", {"lightcurve_url": "http://heasarc.gsfc."
    ...     "nasa.gov/FTP/fermi/data/gbm/triggers/2018/bn180116026/quicklook/"
    ...     "glg_lc_medres34_bn180116026.gif"})
    'http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/2018/bn180116026/quicklook/glg_healpix_all_bn180116026.fit'
    >>> official_map_url("FERMI_GBM_FLT_POS", {}) is None
    True
    """
    if extra.get("healpix_url"):
        return str(extra["healpix_url"])
    lc = extra.get("lightcurve_url")
    if notice_type != "FERMI_GBM_FIN_POS" or not lc:
        return None
    folder, _, name = str(lc).rpartition("/")
    trigger = name.rsplit("_", 1)[-1].split(".", 1)[0]
    if not folder.endswith("/quicklook") or not trigger.startswith("bn"):
        return None
    return f"{folder}/glg_healpix_all_{trigger}.fit"


def parse_fermi(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a Fermi GBM/LAT VOEvent payload into a :class:`Notice`.

    Examples
    --------
    The packet table says what each type is:

    >>> spec = PACKETS[115]
    >>> spec.notice_type, spec.stage, spec.containment, spec.convention
    ('FERMI_GBM_FIN_POS', 3, 0.6827, 'fermi_gbm_final')
    """
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
