"""The one position rule (mm_broker.core.position), at its edges, and every parser using it."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest

from listeners.parsers.json_registry import parse_json
from listeners.parsers.voevent_registry import parse_voevent
from mm_broker.core import position
from mm_broker.core.errors import BadCoordinates
from mm_broker.core.position import check_position

BELOW_360 = math.nextafter(360.0, 0.0)
ABOVE_360 = math.nextafter(360.0, math.inf)
BELOW_0 = -5e-324  # the negative number closest to 0
ABOVE_90 = math.nextafter(90.0, math.inf)


@pytest.mark.parametrize(
    ("ra", "dec", "expected"),
    [
        (0.0, 0.0, (0.0, 0.0)),
        (-0.0, 0.0, (0.0, 0.0)),
        (BELOW_360, 0.0, (BELOW_360, 0.0)),
        (360.0, 0.0, (0.0, 0.0)),
        (5e-324, -90.0, (5e-324, -90.0)),
        (180.0, 90.0, (180.0, 90.0)),
        (359.999, -89.999, (359.999, -89.999)),
    ],
)
def test_accepted_edges(ra: float, dec: float, expected: tuple[float, float]) -> None:
    got = check_position(ra, dec)
    assert got == expected
    assert 0.0 <= got[0] < 360.0 and math.copysign(1.0, got[0]) == 1.0  # no -0.0


@pytest.mark.parametrize(
    ("ra", "dec", "message"),
    [
        (BELOW_0, 0.0, r"ra = -4\.94066e-324 deg is outside \[0, 360\]"),
        (ABOVE_360, 0.0, r"ra = 360 deg is outside \[0, 360\]"),
        (-999.0, 0.0, r"ra = -999 deg is outside \[0, 360\]"),  # missing-value code
        (-10.0, 0.0, r"ra = -10 deg is outside \[0, 360\]"),  # never wrapped
        (370.0, 0.0, r"ra = 370 deg is outside \[0, 360\]"),
        (10.0, ABOVE_90, r"dec = 90 deg is outside \[-90, 90\]"),
        (10.0, -90.5, r"dec = -90\.5 deg is outside \[-90, 90\]"),
        (math.nan, 0.0, r"non-finite position ra=nan, dec=0\.0"),
        (0.0, math.inf, r"non-finite position ra=0\.0, dec=inf"),
        (-math.inf, 0.0, r"non-finite position ra=-inf"),
    ],
)
def test_refused_edges(ra: float, dec: float, message: str) -> None:
    with pytest.raises(BadCoordinates, match=message) as info:
        check_position(ra, dec, "X:1 TEST")
    assert str(info.value).startswith("bad_coordinates: X:1 TEST: ")


def test_doctests() -> None:
    result = doctest.testmod(position, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0


# Every parser family applies the same rule: the VOEvent reader, the unified GCN JSON
# reader (Einstein Probe), IceCube's own array form and the unified box corners (MAXI).

GND_POS = "notices/fermi_gbm/fermi_gbm_gnd_pos_1706.xml"
EP = "notices/einstein_probe/alert_247.json"
ICECUBE = "notices/icecube/single_neutrino_alerts.gold_bronze_track_alerts.example.json"
MAXI_BOX = "notices/maxi/gsc.unknown.rectangle.example.json"
REFUSED = [-0.001, 360.001, -999.0]


def _voevent_ra(data_dir: Path, ra: float) -> bytes:
    raw = (data_dir / GND_POS).read_bytes()
    start = raw.index(b"<C1>")
    end = raw.index(b"</C1>", start)
    return raw[:start] + f"<C1>{ra!r}".encode() + raw[end:]


def test_voevent_rule(data_dir: Path) -> None:
    assert parse_voevent(_voevent_ra(data_dir, 360.0)).localisation.ra == 0.0  # type: ignore[union-attr]
    assert parse_voevent(_voevent_ra(data_dir, 0.0)).localisation.ra == 0.0  # type: ignore[union-attr]
    for bad in REFUSED:
        with pytest.raises(BadCoordinates, match=r"ra = .* deg is outside \[0, 360\]"):
            parse_voevent(_voevent_ra(data_dir, bad))


def _json(data_dir: Path, path: str, **values: object) -> bytes:
    doc = json.loads((data_dir / path).read_bytes())
    doc.update(values)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (EP, {}),
        # IceCube's earlier array form is read by json_icecube itself.
        (ICECUBE, {"ra_dec_error": None, "ra_uncertainty": [0.5]}),
    ],
    ids=["unified", "icecube-array"],
)
def test_json_rule(data_dir: Path, path: str, change: dict[str, object]) -> None:
    base = {k: v for k, v in change.items() if v is not None}
    drop = [k for k, v in change.items() if v is None]

    def payload(ra: float) -> bytes:
        doc = json.loads(_json(data_dir, path, ra=ra, **base))
        for key in drop:
            doc.pop(key, None)
        return json.dumps(doc).encode()

    assert parse_json(payload(360.0)).localisation.ra == 0.0  # type: ignore[union-attr]
    for bad in REFUSED:
        with pytest.raises(BadCoordinates, match=r"ra = .* deg is outside \[0, 360\]"):
            parse_json(payload(bad))


def test_box_corner_rule(data_dir: Path) -> None:
    doc = json.loads((data_dir / MAXI_BOX).read_bytes())
    doc["rectangular_error_corners"][0][0] = -0.001
    with pytest.raises(BadCoordinates,
                       match=r"rectangular_error_corners: ra = -0.001 deg is outside \[0, 360\]"):
        parse_json(json.dumps(doc).encode())
