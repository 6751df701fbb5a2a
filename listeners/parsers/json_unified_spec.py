"""The facts about GCN unified-schema missions, as data: :class:`MissionSpec`.

Also the unified schema's own vocabularies (``alert_tense`` roles, ``alert_type``
values, messengers) and the keys the shared reader consumes. The reader is
:mod:`listeners.parsers.json_gcn_unified`; the localisation blocks are read by
:mod:`listeners.parsers.json_unified_localisation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mm_broker.core.models import (
    Messenger,
    Role,
)

#: ``alert_tense`` (core/Alert.schema.json) -> role.
TENSE_ROLE: dict[str, Role] = {
    "current": Role.OBSERVATION,
    "archival": Role.OBSERVATION,
    "test": Role.TEST,
    "injection": Role.TEST,
    "planned": Role.UTILITY,
    "commanded": Role.UTILITY,
}

#: ``alert_type`` values of core/Alert.schema.json.
ALERT_TYPES = ("initial", "update", "retraction")

#: ``messenger`` of core/Reporter.schema.json that each of our messengers may carry.
JSON_MESSENGER: dict[Messenger, str] = {
    Messenger.GW: "GW",
    Messenger.GRB: "EM",
    Messenger.X: "EM",
    Messenger.NU: "Neutrino",
    Messenger.FRB: "EM",
}

#: Schema default of ``containment_probability`` (core/Localization.schema.json).
DEFAULT_CONTAINMENT = 0.9

#: Keys turned into Notice fields, not repeated in ``extra``.
CONSUMED_KEYS = frozenset(
    {
        "ra",
        "dec",
        "ra_dec_error",
        "containment_probability",
        "healpix_file",
        "trigger_time",
        "alert_datetime",
        "far",
        "p_astro",
        "signalness",
        "p_value",
        "classification",
        "properties",
        "rate_snr",
        "image_snr",
    }
)


@dataclass(frozen=True)
class MissionSpec:
    """Facts about one mission's unified-schema notices.

    Attributes
    ----------
    key : str
        Upper-case notice family, first part of ``notice_type``.
    mission : str
        Mission name written into :attr:`Notice.mission`.
    instrument : str
        Instrument when the notice names none.
    messenger : Messenger
        Our messenger class.
    event_prefix : str
        Prefix of :attr:`Notice.event_id` (``"<prefix>:<trigger id>"``).
    schemas : tuple of str
        Version-independent ``$schema`` paths this mission's notices carry.
    topics : tuple of str
        GCN Kafka topics carrying them.
    convention : str
        :attr:`Circle.convention` when the radius includes the systematic error
        (or the mission defines no separate systematic).
    convention_stat_only : str or None
        Convention when ``systematic_included`` is false (``None``: same as
        ``convention``).
    systematic_included_default : bool
        Reading of an absent ``systematic_included``.
    systematic_deg : float or None
        The mission's systematic radius, added as :attr:`Circle.systematic_deg` when
        the notice says it is not included; ``None`` when not published.
    containment_default : float
        Containment of ``ra_dec_error`` when ``containment_probability`` is absent.
    skymap_convention : str
        :attr:`SkyMap.convention` for this mission's HEALPix maps.
    """

    key: str
    mission: str
    instrument: str
    messenger: Messenger
    event_prefix: str
    schemas: tuple[str, ...]
    topics: tuple[str, ...] = ()
    convention: str = "gcn_unified_containment"
    convention_stat_only: str | None = None
    systematic_included_default: bool = False
    systematic_deg: float | None = None
    containment_default: float = DEFAULT_CONTAINMENT
    skymap_convention: str = "gcn_unified_healpix"
