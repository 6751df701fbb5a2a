# ruff: noqa: E501  (the expected-outcome table keeps one file per line)
"""Every JSON notice under ``notices/`` and ``triggers/`` has a definite outcome.

The table :data:`EXPECTED` names, for each file (path relative to the shared data),
either the Notice we expect (event id, messenger, notice type, role, version, trigger
time and where the region is) or the named error and a piece of its message. The
test walks the folders and fails on a file missing from the table, a table entry
with no file, or any exception that is not a :class:`NoticeError`.

``triggers/lvk_notices/`` holds 33 real LVK alerts whose ``event.skymap`` was replaced
by the data helper with a pointer to the decoded map under ``skymaps/gw/``: as bytes
on the wire they are corrupt (:class:`BadSkyMap`).
:func:`test_stripped_lvk_alerts_parse_once_rehydrated` puts each map back (base64) and
checks the full parse, the map bytes (md5) included.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from listeners.parsers import json_registry
from listeners.parsers.json_registry import parse_json
from mm_broker.core.errors import (
    BadSkyMap,
    NoPosition,
    NoticeError,
    UnsupportedNoticeType,
)
from mm_broker.core.models import Box, Circle, Ellipse, Messenger, Notice, Role, SkyMap

pytestmark = pytest.mark.filterwarnings("error")

GW, GRB, NU, X = Messenger.GW, Messenger.GRB, Messenger.NU, Messenger.X
OBSERVATION, TEST = Role.OBSERVATION, Role.TEST


@dataclass(frozen=True)
class Ok:
    """A file that parses to a Notice with these values.

    ``where`` is ``(ra, dec, radius_deg)`` for a circle, ``"skymap"``, ``"ellipse"``,
    ``"box"``, or ``None`` for a retraction.
    """

    event_id: str
    messenger: Messenger
    notice_type: str
    role: Role
    version: int
    trigger_time: str
    where: tuple[float, float, float] | str | None


@dataclass(frozen=True)
class Fails:
    """A file refused with this named error; ``reason`` is part of its message."""

    error: type[NoticeError]
    reason: str


#: The gcn_schema_core examples are building blocks, not notices.
CORE = "a core schema component, not a notice"

#: The 33 alerts of ``triggers/lvk_notices/``: sky map replaced by a file pointer.
STRIPPED = Fails(BadSkyMap, "event.skymap is not valid base64")

# fmt: off
EXPECTED: dict[str, Ok | Fails] = {
    "notices/boom/alert.example.json": Fails(UnsupportedNoticeType, "BOOM optical-survey report"),
    "notices/einstein_probe/alert.example.json": Ok("EP:01708973486", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2024-03-01T21:46:05.130000Z", (120.0, 40.0, 0.02)),
    "notices/einstein_probe/alert_247.json": Ok("EP:01709259773", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-09T11:45:11.949000Z", (184.664, -6.146, 0.05174976)),
    "notices/einstein_probe/alert_248.json": Ok("EP:01709259790", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-10T11:27:58.599000Z", (166.582, 45.017, 0.05126996)),
    "notices/einstein_probe/alert_249.json": Ok("EP:01709260010", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-13T04:55:40.199000Z", (173.242, -15.523, 0.05171121)),
    "notices/einstein_probe/alert_250.json": Ok("EP:01709260122", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-14T05:13:09.749000Z", (238.247, 44.964, 0.05100463)),
    "notices/einstein_probe/alert_251.json": Ok("EP:01709260236", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-16T05:29:32.199000Z", (198.836, 31.59, 0.05180248)),
    "notices/einstein_probe/alert_252.json": Ok("EP:01709260303", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-19T07:22:35.699000Z", (278.192, 18.404, 0.05119201)),
    "notices/einstein_probe/alert_253.json": Ok("EP:01709260314", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-20T09:25:12.700000Z", (210.692, -24.501, 0.05105083)),
    "notices/einstein_probe/alert_254.json": Ok("EP:01709260362", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-21T20:52:02.749000Z", (223.768, -11.374, 0.05137775)),
    "notices/einstein_probe/alert_255.json": Ok("EP:01709261081", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-04-30T02:32:47.999000Z", (178.334, -10.202, 0.05096604)),
    "notices/einstein_probe/alert_256.json": Ok("EP:01709261349", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-05-02T06:08:51.949000Z", (272.19, -76.244, 0.05137455)),
    "notices/einstein_probe/alert_257.json": Ok("EP:01709261576", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-05-02T18:35:45.549000Z", (167.335, -77.502, 0.05125543)),
    "notices/einstein_probe/alert_258.json": Ok("EP:01709261593", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2026-05-07T13:47:57.951000Z", (206.895, -22.243, 0.05065978)),
    "notices/fermi_gbm/trigger.alert.example.json": Fails(NoPosition, "no ra/dec, healpix_file or healpix_url"),
    "notices/fermi_gbm/trigger.final.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_FINAL_POSITION_UPDATE", OBSERVATION, 7, "2024-08-24T02:14:40.430000Z", (29.24, -63.62, 1.0)),
    "notices/fermi_gbm/trigger.flight1.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_FLIGHT_POSITION_UPDATE", OBSERVATION, 2, "2024-08-24T02:14:40.430000Z", (136.917, -78.117, 8.32)),
    "notices/fermi_gbm/trigger.flight2.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_FLIGHT_POSITION_UPDATE", OBSERVATION, 3, "2024-08-24T02:14:40.430000Z", (236.783, 66.633, 9.23)),
    "notices/fermi_gbm/trigger.flight3.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_FLIGHT_POSITION_UPDATE", OBSERVATION, 4, "2024-08-24T02:14:40.430000Z", (235.883, 68.683, 7.15)),
    "notices/fermi_gbm/trigger.ground1.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_GROUND_POSITION_UPDATE", OBSERVATION, 5, "2024-08-24T02:14:40.430000Z", (92.17, -66.98, 1.34)),
    "notices/fermi_gbm/trigger.ground2.example.json": Ok("Fermi-GBM:745121685", GRB, "FERMI_GBM_GROUND_POSITION_UPDATE", OBSERVATION, 6, "2024-08-24T02:14:40.430000Z", (90.56, -67.87, 1.08)),
    "notices/fermi_lat/flare.example.json": Fails(UnsupportedNoticeType, "Fermi-LAT flare of a known gamma-ray source"),
    "notices/gcn_schema_core/Localization.example.json": Fails(UnsupportedNoticeType, CORE),
    "notices/gcn_schema_core/Pointing.example.json": Fails(UnsupportedNoticeType, CORE),
    "notices/gcn_schema_core/Reporter.example.json": Fails(UnsupportedNoticeType, CORE),
    "notices/gcn_schema_core/Spectral.example.json": Fails(UnsupportedNoticeType, CORE),
    "notices/gcn_schema_core/Statistics.example.json": Fails(UnsupportedNoticeType, CORE),
    "notices/icecube/lvk_nu_track_search.example.json": Ok("IceCube-LVK:S230914ak", NU, "ICECUBE_LVK_NU_TRACK_SEARCH_INITIAL", OBSERVATION, 2, "2023-09-14T11:14:01Z", (17.48, 16.15, 0.5)),
    "notices/icecube/single_neutrino_alerts.gold_bronze_track_alerts.example.json": Ok("IceCube:137840_57034692", NU, "ICECUBE_ASTROTRACK_BRONZE_INITIAL", OBSERVATION, 1, "2023-04-16T05:22:26.150574Z", (345.82, 9.01, 0.5)),
    "notices/km3net/alert.example.json": Ok("KM3NeT:KM3-240901A", NU, "KM3NET_ALERT_INITIAL", OBSERVATION, 1, "2024-09-01T01:16:47Z", (10.82, 20.01, 0.9)),
    "notices/km3net/alert.multiplet.example.json": Ok("KM3NeT:KM3-240901B", NU, "KM3NET_ALERT_INITIAL", OBSERVATION, 1, "2025-01-01T01:16:47Z", (13.81, 18.85, 0.41)),
    "notices/lvk/MS181101ab-earlywarning.json": Ok("LVK:MS181101ab", GW, "EARLYWARNING", TEST, 15411116600, "2018-11-01T22:22:46.654000Z", "skymap"),
    "notices/lvk/MS181101ab-ext-update.json": Ok("LVK:MS181101ab", GW, "UPDATE", TEST, 15411117853, "2018-11-01T22:22:46.654000Z", "skymap"),
    "notices/lvk/MS181101ab-initial.json": Ok("LVK:MS181101ab", GW, "INITIAL", TEST, 15411117852, "2018-11-01T22:22:46.654000Z", "skymap"),
    "notices/lvk/MS181101ab-preliminary.json": Ok("LVK:MS181101ab", GW, "PRELIMINARY", TEST, 15411116891, "2018-11-01T22:22:46.654000Z", "skymap"),
    "notices/lvk/MS181101ab-retraction.json": Ok("LVK:MS181101ab", GW, "RETRACTION", TEST, 15411153834, "2018-11-01T23:36:23Z", None),
    "notices/lvk/MS181101ab-update.json": Ok("LVK:MS181101ab", GW, "UPDATE", TEST, 15411117853, "2018-11-01T22:22:46.654000Z", "skymap"),
    "notices/lvk/initial.txt": Ok("LVK:S230518h", GW, "INITIAL", OBSERVATION, 16844260382, "2023-05-18T12:59:08.167000Z", "skymap"),
    "notices/lvk/test.txt": Ok("LVK:MS230518e", GW, "INITIAL", TEST, 16843865842, "2023-05-18T04:57:40.894000Z", "skymap"),
    "notices/lvk/update.txt": Ok("LVK:S230518h", GW, "UPDATE", OBSERVATION, 16844287523, "2023-05-18T12:59:08.167000Z", "skymap"),
    "notices/maxi/gsc.known.example.json": Fails(NoPosition, "ra/dec (285.6, -9.2) given without ra_dec_error"),
    "notices/maxi/gsc.known.retraction.example.json": Ok("MAXI:0858800020", X, "MAXI_GSC_RETRACTION", OBSERVATION, 2, "2025-07-02T14:35:59Z", None),
    "notices/maxi/gsc.unknown.circle.example.json": Ok("MAXI:9995289617", X, "MAXI_GSC_UPDATE", OBSERVATION, 1, "2023-02-20T08:56:01Z", (346.56, 18.61, 1.5)),
    "notices/maxi/gsc.unknown.ellipse.example.json": Ok("MAXI:9995289617", X, "MAXI_GSC_UPDATE", OBSERVATION, 1, "2023-02-20T08:56:01Z", "ellipse"),
    "notices/maxi/gsc.unknown.noerror.example.json": Fails(NoPosition, "ra/dec (346.56, 18.61) given without ra_dec_error"),
    "notices/maxi/gsc.unknown.rectangle.example.json": Ok("MAXI:9995289617", X, "MAXI_GSC_UPDATE", OBSERVATION, 1, "2023-02-20T08:56:01Z", "box"),
    "notices/maxi/gsc.unknown.retraction.example.json": Ok("MAXI:9995289617", X, "MAXI_GSC_RETRACTION", OBSERVATION, 2, "2023-02-20T08:56:01Z", None),
    "notices/superk/sn_alert.real.example.json": Ok("Super-K:SN.095001.000001", NU, "SUPERK_SN_ALERT_INITIAL", OBSERVATION, 1, "2023-08-01T00:00:01Z", (270.82, 31.46, 0.91)),
    "notices/superk/sn_alert.test.example.json": Ok("Super-K:SN.095001.000001", NU, "SUPERK_SN_ALERT_INITIAL", TEST, 1, "2023-08-01T00:00:01Z", (270.82, 31.46, 0.91)),
    "notices/svom/trigger.catalog.example.json": Ok("SVOM:sb24022203", GRB, "SVOM_TRIGGER_INITIAL", TEST, 1, "2024-02-22T08:51:31.320000Z", (143.2478, -68.0289, 0.1)),
    "notices/svom/trigger.example.json": Ok("SVOM:sb24022203", GRB, "SVOM_TRIGGER_INITIAL", TEST, 1, "2024-02-22T08:51:31.320000Z", (143.2478, -68.0289, 0.1)),
    "notices/svom/trigger.not-slewing.example.json": Ok("SVOM:sb24022203", GRB, "SVOM_TRIGGER_UPDATE", TEST, 1, "2024-02-22T08:51:31.320000Z", (143.2478, -68.0289, 0.1)),
    "notices/svom/trigger.slewing.example.json": Ok("SVOM:sb24022203", GRB, "SVOM_TRIGGER_UPDATE", TEST, 1, "2024-02-22T08:51:31.320000Z", (143.2478, -68.0289, 0.1)),
    "notices/svom/trigger.wakeup.example.json": Ok("SVOM:sb24022203", GRB, "SVOM_TRIGGER_INITIAL", TEST, 1, "2024-02-22T08:51:31.320000Z", (143.2478, -68.0289, 0.1)),
    "notices/swift/Guano.Retraction.example.json": Ok("Swift-GUANO:694215995", GRB, "SWIFT_BAT_GUANO_RETRACTION", OBSERVATION, 4, "2022-12-31T21:46:05.130000Z", None),
    "notices/swift/Guano.example.json": Fails(NoPosition, "GUANO 'initial' notice carries no localisation"),
    "notices/swift/SWIFT_BAT_GRB_POS_ACK_example.json": Fails(UnsupportedNoticeType, "no topic, no $schema and an unrecognised JSON shape"),
    "notices/swift/guano.loc_arc_min.example.json": Ok("Swift-GUANO:694215995", GRB, "SWIFT_BAT_GUANO_UPDATE", OBSERVATION, 3, "2022-12-31T21:46:05.130000Z", (336.26, 25.139, 0.5)),
    "notices/swift/guano.loc_map.example.json": Fails(BadSkyMap, "healpix_file is not valid base64"),
    "triggers/lvk_notices/MS230518e-INITIAL-20230518T050944Z.json": STRIPPED,
    "triggers/lvk_notices/S230518h-INITIAL-20230518T160718Z.json": STRIPPED,
    "triggers/lvk_notices/S230518h-UPDATE-20230518T165232Z.json": STRIPPED,
    "triggers/lvk_notices/S240112e-PRELIMINARY-20240112T010901Z.json": STRIPPED,
    "triggers/lvk_notices/S240112e-PRELIMINARY-20240112T011334Z.json": STRIPPED,
    "triggers/lvk_notices/S240112w-PRELIMINARY-20240112T125931Z.json": STRIPPED,
    "triggers/lvk_notices/S240112w-PRELIMINARY-20240112T130405Z.json": STRIPPED,
    "triggers/lvk_notices/S240112y-PRELIMINARY-20240112T130540Z.json": STRIPPED,
    "triggers/lvk_notices/S240112y-PRELIMINARY-20240112T131014Z.json": STRIPPED,
    "triggers/lvk_notices/S240114aj-PRELIMINARY-20240114T225954Z.json": STRIPPED,
    "triggers/lvk_notices/S240114aj-PRELIMINARY-20240114T230524Z.json": STRIPPED,
    "triggers/lvk_notices/S240114b-PRELIMINARY-20240114T095419Z.json": STRIPPED,
    "triggers/lvk_notices/S240114b-PRELIMINARY-20240114T095853Z.json": STRIPPED,
    "triggers/lvk_notices/S240114l-PRELIMINARY-20240114T135634Z.json": STRIPPED,
    "triggers/lvk_notices/S240114l-PRELIMINARY-20240114T140108Z.json": STRIPPED,
    "triggers/lvk_notices/S240114n-PRELIMINARY-20240114T153639Z.json": STRIPPED,
    "triggers/lvk_notices/S240114n-PRELIMINARY-20240114T154113Z.json": STRIPPED,
    "triggers/lvk_notices/S240114t-PRELIMINARY-20240114T173157Z.json": STRIPPED,
    "triggers/lvk_notices/S240114t-PRELIMINARY-20240114T173716Z.json": STRIPPED,
    "triggers/lvk_notices/S240115ak-PRELIMINARY-20240115T200827Z.json": STRIPPED,
    "triggers/lvk_notices/S240115ak-PRELIMINARY-20240115T201302Z.json": STRIPPED,
    "triggers/lvk_notices/S240115ao-PRELIMINARY-20240115T210849Z.json": STRIPPED,
    "triggers/lvk_notices/S240115ao-PRELIMINARY-20240115T211324Z.json": STRIPPED,
    "triggers/lvk_notices/S240115f-PRELIMINARY-20240115T084844Z.json": STRIPPED,
    "triggers/lvk_notices/S240115f-PRELIMINARY-20240115T085320Z.json": STRIPPED,
    "triggers/lvk_notices/S240115k-PRELIMINARY-20240115T093004Z.json": STRIPPED,
    "triggers/lvk_notices/S240115k-PRELIMINARY-20240115T093505Z.json": STRIPPED,
    "triggers/lvk_notices/S240115n-PRELIMINARY-20240115T100615Z.json": STRIPPED,
    "triggers/lvk_notices/S240115n-PRELIMINARY-20240115T101049Z.json": STRIPPED,
    "triggers/lvk_notices/S240115q-PRELIMINARY-20240115T112941Z.json": STRIPPED,
    "triggers/lvk_notices/S240115q-PRELIMINARY-20240115T113415Z.json": STRIPPED,
    "triggers/lvk_notices/S240115x-PRELIMINARY-20240115T142125Z.json": STRIPPED,
    "triggers/lvk_notices/S240115x-PRELIMINARY-20240115T142600Z.json": STRIPPED,
    "triggers/lvk_notices_full/MS260605l-PRELIMINARY.full.json": Ok("LVK:MS260605l", GW, "PRELIMINARY", TEST, 17806608671, "2026-06-05T11:57:26.395000Z", "skymap"),
    "triggers/lvk_notices_full/S230518h-INITIAL.full.json": Ok("LVK:S230518h", GW, "INITIAL", OBSERVATION, 16844260382, "2023-05-18T12:59:08.167000Z", "skymap"),
    "triggers/lvk_notices_full/igwn_gwalert_retraction.json": Ok("LVK:MS260605l", GW, "RETRACTION", TEST, 17806614574, "2026-06-05T12:10:57Z", None),
    "triggers/voevents/skyportal/EP240508.json": Ok("EP:WXT-20240508T073801.151Z", X, "EP_WXT_ALERT_INITIAL", OBSERVATION, 1, "2024-05-08T07:38:01.151000Z", (229.837999999, -29.746999999, 0.05089517)),
}
# fmt: on


def _where(notice: Notice) -> tuple[float, float, float] | str | None:
    loc = notice.localisation
    if isinstance(loc, Circle):
        return (loc.ra, loc.dec, loc.radius_deg)
    if isinstance(loc, SkyMap):
        return "skymap"
    if isinstance(loc, Ellipse):
        return "ellipse"
    if isinstance(loc, Box):
        return "box"
    return None


def test_table_covers_every_json_file(json_notice_paths: list[str]) -> None:
    assert len(json_notice_paths) == 96
    missing = sorted(set(json_notice_paths) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(json_notice_paths))
    assert not missing, f"JSON files without an expected outcome: {missing}"
    assert not stale, f"expected outcomes for files that do not exist: {stale}"


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_outcome(
    rel: str,
    read_notice: Callable[[str], bytes],
    notice_invariants: Callable[[Notice], None],
) -> None:
    expected = EXPECTED[rel]
    payload = read_notice(rel)
    if isinstance(expected, Fails):
        with pytest.raises(expected.error) as info:
            parse_json(payload)
        assert expected.reason in info.value.message
        assert info.value.reason == expected.error.reason
        return
    notice = parse_json(payload)
    notice_invariants(notice)
    assert notice.event_id == expected.event_id
    assert notice.messenger is expected.messenger
    assert notice.notice_type == expected.notice_type
    assert notice.role is expected.role
    assert notice.version == expected.version
    assert notice.trigger_time == datetime.fromisoformat(expected.trigger_time)
    assert notice.retraction == (expected.where is None)
    where = _where(notice)
    if isinstance(expected.where, tuple):
        assert isinstance(where, tuple)
        assert where == pytest.approx(expected.where, abs=1e-12)
    else:
        assert where == expected.where


def _topic_of(payload: bytes) -> str | None:
    """The Kafka topic this message would arrive on, from its own $schema/shape."""
    doc = json.loads(payload)
    if "superevent_id" in doc:
        return "igwn.gwalert"
    url = doc.get("$schema", "")
    for topic, parser in json_registry.TOPIC_PARSERS.items():
        for path, other in json_registry.SCHEMA_PARSERS.items():
            if other is parser and url.endswith(path):
                return topic
    return None


def test_same_notice_by_topic(read_notice: Callable[[str], bytes]) -> None:
    """Dispatch by Kafka topic gives the same Notice as dispatch by $schema/shape."""
    checked = []
    for rel in sorted(r for r, e in EXPECTED.items() if isinstance(e, Ok)):
        payload = read_notice(rel)
        topic = _topic_of(payload)
        if topic is None:  # Fermi GBM and SVOM JSON: no confirmed Kafka topic
            continue
        assert parse_json(payload, topic=topic) == parse_json(payload), rel
        checked.append(rel)
    assert len(checked) == 39


def test_outcome_counts() -> None:
    """The per-folder summary, as reported: a regression guard on the table itself."""
    counts: dict[str, dict[str, int]] = {}
    for rel, expected in EXPECTED.items():
        folder = str(Path(rel).parent)
        kind = "Notice" if isinstance(expected, Ok) else expected.error.__name__
        counts.setdefault(folder, {})
        counts[folder][kind] = counts[folder].get(kind, 0) + 1
    assert counts["triggers/lvk_notices"] == {"BadSkyMap": 33}
    assert counts["notices/lvk"] == {"Notice": 9}
    assert counts["notices/gcn_schema_core"] == {"UnsupportedNoticeType": 5}
    assert sum(v.get("Notice", 0) for v in counts.values()) == 50


# --------------------------------------------------------------------------- #
# The stripped LVK alerts, with their maps put back
# --------------------------------------------------------------------------- #

_POINTER = re.compile(
    r"\(removed by data helper: decoded bytes are (?P<path>skymaps/gw/[^,]+), "
    r"md5 (?P<md5>[0-9a-f]{32})\)"
)
_NAME = re.compile(r"(?P<sid>[MT]?S\d{6}[a-z]+)-(?P<kind>[A-Z]+)-(?P<created>\d{8}T\d{6}Z)\.json")


def _stripped() -> list[str]:
    return sorted(rel for rel, expected in EXPECTED.items() if expected is STRIPPED)


@pytest.mark.parametrize("rel", _stripped())
def test_stripped_lvk_alerts_parse_once_rehydrated(
    rel: str,
    data_dir: Path,
    read_notice: Callable[[str], bytes],
    notice_invariants: Callable[[Notice], None],
) -> None:
    doc = json.loads(read_notice(rel))
    pointer = _POINTER.fullmatch(doc["event"]["skymap"])
    assert pointer is not None, "the data helper's pointer format changed"
    fits = (data_dir / pointer["path"]).read_bytes()
    assert hashlib.md5(fits).hexdigest() == pointer["md5"]
    doc["event"]["skymap"] = base64.b64encode(fits).decode("ascii")
    notice = parse_json(json.dumps(doc).encode("utf-8"))
    notice_invariants(notice)

    name = _NAME.fullmatch(Path(rel).name)
    assert name is not None
    created = datetime.strptime(name["created"], "%Y%m%dT%H%M%S%z")
    assert notice.event_id == f"LVK:{name['sid']}"
    assert notice.notice_type == name["kind"]
    assert notice.issue_time == created
    assert notice.role is (Role.TEST if name["sid"].startswith("M") else Role.OBSERVATION)
    assert isinstance(notice.localisation, SkyMap)
    assert notice.localisation.data == fits
    assert notice.trigger_time == datetime.fromisoformat(doc["event"]["time"])
    assert notice.significance["far_hz"] == doc["event"]["far"]


def test_stripped_alerts_versions_increase_per_event(
    data_dir: Path, read_notice: Callable[[str], bytes]
) -> None:
    """Two PRELIMINARY alerts of one superevent: the later one has the higher version."""
    by_event: dict[str, list[tuple[datetime, int]]] = {}
    for rel in _stripped():
        doc = json.loads(read_notice(rel))
        pointer = _POINTER.fullmatch(doc["event"]["skymap"])
        assert pointer is not None
        doc["event"]["skymap"] = base64.b64encode(
            (data_dir / pointer["path"]).read_bytes()
        ).decode()
        notice = parse_json(json.dumps(doc).encode())
        by_event.setdefault(notice.event_id, []).append((notice.issue_time, notice.version))
    assert len(by_event) == 17
    for versions in by_event.values():
        ordered = sorted(versions)
        assert [v for _, v in ordered] == sorted(v for _, v in ordered)
        assert len({v for _, v in ordered}) == len(ordered)


def test_no_unexpected_exception_on_any_file(
    json_notice_paths: list[str], read_notice: Callable[[str], bytes]
) -> None:
    """Belt and braces: only Notices or NoticeErrors, with or without a topic."""
    topics = [None, *json_registry.TOPIC_PARSERS]
    for rel in json_notice_paths:
        for topic in topics:
            with contextlib.suppress(NoticeError):
                parse_json(read_notice(rel), topic=topic)
