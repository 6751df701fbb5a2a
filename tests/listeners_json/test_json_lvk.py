"""``igwn.gwalert`` parser: S230518h against the peer's golden, maps, versions, roles."""

from __future__ import annotations

import base64
import calendar
import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from astropy.time import Time

from listeners.parsers import json_lvk
from listeners.parsers.json_registry import parse_json
from mm_broker.core.errors import BadSkyMap, MalformedPayload, SchemaError, UnsupportedNoticeType
from mm_broker.core.models import Messenger, Notice, Role, SkyMap

pytestmark = pytest.mark.filterwarnings("error")

S230518H_INITIAL = "triggers/lvk_notices_full/S230518h-INITIAL.full.json"
S230518H_INITIAL_FINK = "notices/lvk/initial.txt"
S230518H_UPDATE = "notices/lvk/update.txt"
S230518H_MAP = "skymaps/gw/S230518h-INITIAL-20230518T160718Z.multiorder.fits"
S230518H_MAP_MD5 = "7e8530a321dac66ead1365704bb090e4"
GOLDEN = "fink-mm/FusRoman-fink-mm/test_data/S230518h_0_test"
MS181101AB = "notices/lvk/MS181101ab-{}.json"


def _doc(read_notice: Callable[[str], bytes], rel: str) -> dict[str, Any]:
    doc = json.loads(read_notice(rel))
    assert isinstance(doc, dict)
    return doc


def _unix(text: str) -> int:
    return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timetuple())


# --------------------------------------------------------------------------- #
# S230518h
# --------------------------------------------------------------------------- #


def test_s230518h_initial(
    read_notice: Callable[[str], bytes], notice_invariants: Callable[[Notice], None]
) -> None:
    notice = json_lvk.parse(read_notice(S230518H_INITIAL))
    notice_invariants(notice)
    assert notice.event_id == "LVK:S230518h"
    assert notice.messenger is Messenger.GW
    assert (notice.mission, notice.instrument) == ("LVK", "H1,L1")
    assert notice.notice_type == "INITIAL"
    assert notice.role is Role.OBSERVATION
    assert notice.trigger_time == datetime(2023, 5, 18, 12, 59, 8, 167000, tzinfo=UTC)
    assert notice.issue_time == datetime(2023, 5, 18, 16, 7, 18, tzinfo=UTC)
    assert notice.version == _unix("2023-05-18T16:07:18Z") * 10 + 2 == 16844260382
    assert not notice.retraction
    assert notice.significance == {
        "far_hz": 3.218261352069347e-10,
        "significant": True,
        "classification": {
            "BNS": 0.0,
            "NSBH": 0.8642645059209272,
            "BBH": 0.036717034905487424,
            "Terrestrial": 0.09901845917358532,
        },
        "properties": {"HasNS": 1.0, "HasRemnant": 0.0, "HasMassGap": 0.0},
    }
    assert notice.extra["superevent_id"] == "S230518h"
    assert notice.extra["pipeline"] == "pycbc"
    assert notice.extra["urls"]["gracedb"].endswith("/S230518h/view/")


def test_s230518h_trigger_time_agrees_with_fink_mm_golden(
    data_dir: Path, read_notice: Callable[[str], bytes]
) -> None:
    """fink-mm's expected parse of the same alert: same event, same t0 (UTC and JD)."""
    golden = pd.read_parquet(data_dir / GOLDEN)
    assert len(golden) == 1
    row = golden.iloc[0]
    assert row["triggerId"] == "S230518h" and row["observatory"] == "LVK"
    notice = json_lvk.parse(read_notice(S230518H_INITIAL))
    assert notice.event_id == f"LVK:{row['triggerId']}"
    golden_t0 = datetime.fromisoformat(row["triggerTimeUTC"]).replace(tzinfo=UTC)
    assert notice.trigger_time == golden_t0
    jd = Time(notice.trigger_time, scale="utc").jd
    assert jd == pytest.approx(row["triggerTimejd"], abs=1e-8)  # < 1 ms
    # The golden also holds the raw message: it parses to the same Notice.
    assert json_lvk.parse(row["raw_event"].encode("utf-8")) == notice
    assert row["instrument"].split("_") == notice.instrument.split(",")


def test_s230518h_initial_sky_map_is_fits(
    data_dir: Path, read_notice: Callable[[str], bytes]
) -> None:
    notice = json_lvk.parse(read_notice(S230518H_INITIAL))
    assert isinstance(notice.localisation, SkyMap)
    data = notice.localisation.data
    assert data is not None and notice.localisation.url is None
    plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    assert plain[:6] == b"SIMPLE"
    assert len(plain) % 2880 == 0  # whole FITS blocks
    assert hashlib.md5(data).hexdigest() == S230518H_MAP_MD5
    assert data == (data_dir / S230518H_MAP).read_bytes()
    assert notice.extra["skymap_bytes"] == 685440


def test_s230518h_copies_agree_and_update_supersedes(read_notice: Callable[[str], bytes]) -> None:
    initial = json_lvk.parse(read_notice(S230518H_INITIAL))
    assert json_lvk.parse(read_notice(S230518H_INITIAL_FINK)) == initial
    update = json_lvk.parse(read_notice(S230518H_UPDATE))
    assert update.event_id == initial.event_id
    assert update.notice_type == "UPDATE"
    assert update.version > initial.version
    assert update.issue_time > initial.issue_time
    assert update.trigger_time == initial.trigger_time
    assert update.significance["properties"]["HasNS"] == pytest.approx(0.9956840182648402)


# --------------------------------------------------------------------------- #
# Mock superevent MS181101ab: a full sequence and a retraction
# --------------------------------------------------------------------------- #


def test_ms181101ab_sequence_is_ordered_and_test(read_notice: Callable[[str], bytes]) -> None:
    kinds = ["earlywarning", "preliminary", "initial", "update", "retraction"]
    notices = [json_lvk.parse(read_notice(MS181101AB.format(k))) for k in kinds]
    assert [n.notice_type for n in notices] == [k.upper() for k in kinds]
    assert all(n.role is Role.TEST for n in notices)
    assert {n.event_id for n in notices} == {"LVK:MS181101ab"}
    versions = [n.version for n in notices]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    # INITIAL and UPDATE were created in the same second: the alert type decides.
    assert notices[2].issue_time == notices[3].issue_time
    assert notices[3].version - notices[2].version == 1


def test_retraction(
    read_notice: Callable[[str], bytes], notice_invariants: Callable[[Notice], None]
) -> None:
    notice = json_lvk.parse(read_notice(MS181101AB.format("retraction")))
    notice_invariants(notice)
    assert notice.retraction is True
    assert notice.localisation is None
    assert notice.role is Role.TEST
    assert notice.notice_type == "RETRACTION"
    assert notice.issue_time == notice.trigger_time == datetime(2018, 11, 1, 23, 36, 23, tzinfo=UTC)
    assert notice.extra["trigger_time_source"].startswith("time_created")
    assert notice.instrument == "LVK"
    assert notice.significance == {}


def test_real_superevent_retraction_is_observation(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, "triggers/lvk_notices_full/igwn_gwalert_retraction.json")
    doc["superevent_id"] = "S260605l"
    notice = json_lvk.parse(json.dumps(doc).encode())
    assert notice.role is Role.OBSERVATION and notice.retraction and notice.localisation is None


def test_external_coincidence_block(read_notice: Callable[[str], bytes]) -> None:
    notice = json_lvk.parse(read_notice(MS181101AB.format("ext-update")))
    coinc = notice.extra["external_coinc"]
    assert "combined_skymap" not in coinc
    assert coinc["combined_skymap_bytes"] == 777600
    assert coinc["observatory"] == "Fermi" and coinc["time_difference"] == 2.02
    assert notice.significance["external_coinc_time_far_hz"] == 2.14387838137e-14
    assert notice.significance["external_coinc_time_sky_far_hz"] == 6.410749524018777e-16
    # The localisation is still the GW-only map.
    plain = json_lvk.parse(read_notice(MS181101AB.format("update")))
    assert isinstance(notice.localisation, SkyMap) and isinstance(plain.localisation, SkyMap)
    assert notice.localisation.data == plain.localisation.data


@pytest.mark.parametrize(
    "rel",
    ["notices/lvk/test.txt", "triggers/lvk_notices_full/MS260605l-PRELIMINARY.full.json"],
)
def test_mock_superevents_are_test(rel: str, read_notice: Callable[[str], bytes]) -> None:
    notice = json_lvk.parse(read_notice(rel))
    assert notice.event_id.startswith("LVK:MS")
    assert notice.role is Role.TEST


def _initial(read_notice: Callable[[str], bytes]) -> dict[str, Any]:
    return _doc(read_notice, S230518H_INITIAL)


@pytest.mark.parametrize(
    ("change", "role"),
    [
        ({"superevent_id": "TS230518h"}, Role.TEST),
        ({"superevent_id": "MS230518h"}, Role.TEST),
        ({"alert_tense": "test"}, Role.TEST),
        ({"alert_tense": "current"}, Role.OBSERVATION),
    ],
)
def test_role_rules(
    change: dict[str, str], role: Role, read_notice: Callable[[str], bytes]
) -> None:
    doc = _initial(read_notice)
    doc.update(change)
    assert json_lvk.parse(json.dumps(doc).encode()).role is role


def test_mdc_search_is_test_even_with_s_prefix(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    doc["event"]["search"] = "MDC"
    assert json_lvk.parse(json.dumps(doc).encode()).role is Role.TEST


def test_gzip_compressed_map_is_accepted(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    fits = base64.b64decode(doc["event"]["skymap"])
    packed = gzip.compress(fits, mtime=0)
    doc["event"]["skymap"] = base64.b64encode(packed).decode()
    notice = json_lvk.parse(json.dumps(doc).encode())
    assert isinstance(notice.localisation, SkyMap)
    assert notice.localisation.data == packed
    assert gzip.decompress(packed) == fits


# --------------------------------------------------------------------------- #
# Refusals
# --------------------------------------------------------------------------- #


def test_corrupt_base64_sky_map(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    doc["event"]["skymap"] = doc["event"]["skymap"][:1000] + "!@#" + doc["event"]["skymap"][1003:]
    with pytest.raises(BadSkyMap, match=r"event\.skymap is not valid base64"):
        json_lvk.parse(json.dumps(doc).encode())


def test_truncated_base64_sky_map(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    doc["event"]["skymap"] = doc["event"]["skymap"][:-3]
    with pytest.raises(BadSkyMap, match=r"event\.skymap is not valid base64 \("):
        json_lvk.parse(json.dumps(doc).encode())


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_fits_sky_map(compress: bool, read_notice: Callable[[str], bytes]) -> None:
    """Valid base64 of a map cut short: caught by the FITS block size (or gzip trailer)."""
    doc = _initial(read_notice)
    fits = base64.b64decode(doc["event"]["skymap"])
    data = gzip.compress(fits, mtime=0) if compress else fits
    doc["event"]["skymap"] = base64.b64encode(data[: len(data) - 3000]).decode()
    with pytest.raises(BadSkyMap, match=r"event\.skymap is truncated: \d+ bytes of FITS"):
        json_lvk.parse(json.dumps(doc).encode())


def test_base64_that_is_not_fits(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    doc["event"]["skymap"] = base64.b64encode(b"GIF89a" + bytes(100)).decode()
    with pytest.raises(BadSkyMap, match=r"does not decode to a FITS file \(first bytes b'GIF89a"):
        json_lvk.parse(json.dumps(doc).encode())


def test_corrupt_combined_sky_map(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, MS181101AB.format("ext-update"))
    doc["external_coinc"]["combined_skymap"] = "not base64 at all"
    with pytest.raises(BadSkyMap, match=r"external_coinc\.combined_skymap"):
        json_lvk.parse(json.dumps(doc).encode())


def test_missing_superevent_id(read_notice: Callable[[str], bytes]) -> None:
    doc = _initial(read_notice)
    del doc["superevent_id"]
    payload = json.dumps(doc).encode()
    with pytest.raises(SchemaError, match=r"missing required key 'superevent_id'"):
        parse_json(payload, topic="igwn.gwalert")
    # Without a topic the shape is no longer recognisable as an LVK alert.
    with pytest.raises(UnsupportedNoticeType, match=r"unrecognised JSON shape \(keys: alert_type"):
        parse_json(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(superevent_id="GW230518h"), r"not an LVK superevent id"),
        (lambda d: d.update(alert_type="PREMATURE"), r"alert_type 'PREMATURE' is not one of"),
        (lambda d: d.pop("time_created"), r"missing required key 'time_created'"),
        (lambda d: d.update(time_created="yesterday"), r"'time_created' is not an ISO 8601"),
        (lambda d: d.update(event=None), r"missing required key 'event' \(null in a INITIAL"),
        (lambda d: d["event"].pop("time"), r"missing required key 'event.time'"),
        (lambda d: d["event"].pop("skymap"), r"missing required key 'event.skymap'"),
        (lambda d: d["event"].pop("far"), r"missing required key 'event.far'"),
        (lambda d: d["event"].update(far=-1.0), r"event.far = -1 Hz is negative"),
        (lambda d: d["event"].update(far="1e-9"), r"'event.far' must be a number, got string"),
        (lambda d: d["event"].update(significant="yes"), r"'event.significant' must be a boolean"),
        (lambda d: d["event"].update(instruments="H1"), r"'event.instruments' must be an array"),
        (
            lambda d: d["event"]["classification"].update(BNS="0.1"),
            r"'event.classification.BNS' must be a number",
        ),
    ],
)
def test_schema_violations(
    mutate: Callable[[dict[str, Any]], object], message: str, read_notice: Callable[[str], bytes]
) -> None:
    doc = _initial(read_notice)
    mutate(doc)
    with pytest.raises(SchemaError, match=message):
        json_lvk.parse(json.dumps(doc).encode())


def test_truncated_alert(read_notice: Callable[[str], bytes]) -> None:
    payload = read_notice(S230518H_INITIAL)
    with pytest.raises(MalformedPayload, match=r"not valid JSON: Unterminated string"):
        json_lvk.parse(payload[: len(payload) // 2])


def test_version_rule() -> None:
    created = datetime(2023, 5, 18, 16, 7, 18, tzinfo=UTC)
    ranks = [json_lvk.version_of(kind, created) for kind in json_lvk.ALERT_TYPE_RANK]
    assert ranks == sorted(ranks)
    assert [v % 10 for v in ranks] == [0, 1, 2, 3, 4]
    one_second_later = created.replace(second=19)
    assert json_lvk.version_of("EARLYWARNING", one_second_later) > json_lvk.version_of(
        "RETRACTION", created
    )
