"""Property tests: real VOEvents, mutated, never raise anything but a named NoticeError."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voevent_cases import outcome

from mm_broker.core.errors import BadCoordinates, NoPosition, NoticeError
from mm_broker.core.models import Circle, Notice

#: Seeds: one or more real files per mission and format quirk.
SEEDS = (
    "notices/fermi_gbm/fermi_gbm_flt_pos_8132.xml",
    "notices/fermi_gbm/fermi_gbm_gnd_pos_1706.xml",
    "notices/fermi_gbm/fermi_gbm_alert_3788.xml",
    "notices/fermi_gbm/fermi_subthresh_grb_gcn.xml",
    "notices/fermi_lat/fermi_lat_pos_upd_0.xml",
    "notices/swift/BAT_GRB_Pos_655721-214.xml",
    "notices/swift/XRT_Pos_655721-326.xml",
    "notices/integral/voevent_number=18791.xml",
    "notices/icecube/voevent_number=825.xml",
    "notices/lvk/MS181101ab-6-Update.xml",
    "notices/lvk/MS181101ab-5-Retraction.xml",
    "notices/lvk/G298048-1-Initial.xml",
    "notices/svom/grm_286.xml",
    "notices/svom/grm_330.xml",
    "notices/svom/mxt_42.xml",
    "notices/km3net/km3net_voevent_multiplet_event.example.xml",
    "notices/snews/snews_gcn.xml",
    "triggers/voevents/fink-mm_2024-01/GBM_Fin_Pos2024-01-15T164537.62_727029942_0-958.xml",
    "triggers/voevents/growth-too-marshal/AMON_151115.xml",
)

COMMON = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def seeds(data_dir: Path) -> dict[str, bytes]:
    return {rel: (data_dir / rel).read_bytes() for rel in SEEDS}


def _check(result: Notice | NoticeError) -> None:
    """A mutated payload gives a consistent Notice or a named error, nothing else."""
    if isinstance(result, NoticeError):
        assert result.reason and result.message
        return
    assert result.trigger_time.tzinfo is not None and result.issue_time.tzinfo is not None
    assert result.version >= 0
    if result.retraction:
        assert result.localisation is None
    else:
        assert result.localisation is not None
    if isinstance(result.localisation, Circle):
        c = result.localisation
        assert math.isfinite(c.ra) and 0.0 <= c.ra < 360.0
        assert math.isfinite(c.dec) and -90.0 <= c.dec <= 90.0
        assert math.isfinite(c.radius_deg) and 0.0 < c.radius_deg < 180.0


@COMMON
@given(data=st.data())
def test_byte_flips(seeds: dict[str, bytes], data: st.DataObject) -> None:
    payload = bytearray(data.draw(st.sampled_from(sorted(seeds)).map(seeds.__getitem__)))
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(payload) - 1), st.integers(0, 255)),
            min_size=1,
            max_size=12,
        )
    )
    for index, value in flips:
        payload[index] = value
    _check(outcome(bytes(payload)))


@COMMON
@given(data=st.data())
def test_truncations(seeds: dict[str, bytes], data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(sorted(seeds)).map(seeds.__getitem__))
    cut = data.draw(st.integers(0, len(payload)))
    head = data.draw(st.booleans())
    _check(outcome(payload[:cut] if head else payload[cut:]))


@COMMON
@given(data=st.data())
def test_splices(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Delete, duplicate or insert a slice (random bytes or XML-ish fragments)."""
    payload = data.draw(st.sampled_from(sorted(seeds)).map(seeds.__getitem__))
    start = data.draw(st.integers(0, len(payload)))
    stop = data.draw(st.integers(start, min(len(payload), start + 400)))
    insert = data.draw(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"",
                    b"<",
                    b">",
                    b"</What>",
                    b"<Param name='x'/>",
                    b"&amp;",
                    b"<!--c-->",
                    b"<![CDATA[x]]>",
                    b"\xff\xfe",
                    b"\x00",
                    b"&#0;",
                    b"<Group>",
                    b'value="nan"',
                    b"<C1>",
                    b"-1",
                    b"1e999",
                ]
            ),
            st.just(payload[start:stop]),
        )
    )
    _check(outcome(payload[:start] + insert + payload[stop:]))


@COMMON
@given(
    data=st.data(),
    ra=st.floats(allow_nan=True, allow_infinity=True, width=64),
    dec=st.floats(allow_nan=True, allow_infinity=True, width=64),
    radius=st.floats(allow_nan=True, allow_infinity=True, width=64),
)
def test_arbitrary_coordinates(
    seeds: dict[str, bytes], data: st.DataObject, ra: float, dec: float, radius: float
) -> None:
    """Any numbers in C1/C2/Error2Radius: a valid circle or a position error."""
    rel = data.draw(st.sampled_from([r for r in SEEDS if b"<C1>" in seeds[r]]))
    payload = seeds[rel]
    for tag, value in ((b"C1", ra), (b"C2", dec), (b"Error2Radius", radius)):
        start = payload.index(b"<" + tag + b">") + len(tag) + 2
        end = payload.index(b"</" + tag + b">", start)
        payload = payload[:start] + repr(value).encode() + payload[end:]
    result = outcome(payload)
    _check(result)
    if isinstance(result, NoticeError):
        retraction_or_positionless = rel.endswith(("grm_286.xml", "alert_3788.xml"))
        assert isinstance(result, BadCoordinates | NoPosition) or retraction_or_positionless
