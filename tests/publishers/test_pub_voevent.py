"""Our VOEvents: valid 2.0, the right role, deterministic IVORNs, the right citations,
the best candidate in WhereWhen, refusals with a reason."""

from __future__ import annotations

import collections
import collections.abc
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
import voeventparse as vp  # noqa: E402
from pub_records import real_counterparts, record, swift_trigger  # noqa: E402

from publishers import voevent as vo  # noqa: E402

AUTHOR = "ivo://mm-broker.test/counterparts"
T = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def _load(doc: vo.VOEventDoc) -> vp.Voevent:
    v = vp.loads(doc.xml)
    assert vp.valid_as_v2_0(v)
    return v


def _cites(v: vp.Voevent) -> list[tuple[str, str]]:
    return [(e.attrib["cite"], str(e)) for e in v.xpath("Citations/EventIVORN")]


def test_counterpart_voevent_from_real_trigger_and_alerts(data_dir: Path) -> None:
    recs = real_counterparts(data_dir, "Swift:655721")
    doc = vo.counterpart_voevent(recs, author_ivorn=AUTHOR, authored=T)
    v = _load(doc)
    trig = swift_trigger(data_dir)
    assert doc.ivorn == f"{AUTHOR}#Swift:655721/r1/1" == v.attrib["ivorn"]
    assert v.attrib["role"] == doc.role == "observation"
    assert str(v.Who.AuthorIVORN) == AUTHOR and str(v.Who.Date) == "2026-11-26T12:00:00Z"
    # Citation of the real trigger notice.
    assert _cites(v) == [("followup", trig["ivorn"])]
    # WhereWhen: the rank-1 candidate.
    best = min(recs, key=lambda r: r["rank"])
    pos = vp.get_event_position(v)
    assert (pos.ra, pos.dec) == pytest.approx((best["ra"], best["dec"]))
    assert pos.system == "UTC-ICRS-TOPO"
    assert vp.get_event_time_as_utc(v) == datetime.fromisoformat(best["alert_time"])
    # What: trigger group and one group per candidate, values as published.
    groups = vp.get_grouped_params(v)
    assert groups["trigger"]["trigger_ivorn"]["value"] == trig["ivorn"]
    assert groups["trigger"]["significance.rate_signif"]["value"] == "12.5"
    for i, r in enumerate(sorted(recs, key=lambda r: r["rank"]), start=1):
        g = groups[f"candidate_{i}"]
        assert g["object_id"]["value"] == r["object_id"]
        assert g["alert_id"]["value"] == r["alert_id"]
        assert float(g["ra"]["value"]) == r["ra"] and g["ra"]["unit"] == "deg"
        assert float(g["mag"]["value"]) == r["mag"] and g["band"]["value"] == r["band"]
        assert float(g["p_chance"]["value"]) == r["p_chance"]
        assert int(g["rank"]["value"]) == r["rank"]
        assert "prob_density" not in g  # null in the record: not a Param, not a sentinel
    top = vp.get_toplevel_params(v)
    assert top["n_candidates"]["value"] == str(len(recs))
    # Why: one inference per candidate, with the classification and the rule.
    infs = v.xpath("Why/Inference")
    assert [str(i.Name) for i in infs] == [r["object_id"] for r in
                                          sorted(recs, key=lambda r: r["rank"])]
    assert all(i.attrib["relation"] == "associated" for i in infs)
    assert "no catalogue match" in str(infs[0].Description)
    assert str(v.How.Reference.attrib["uri"]) == AUTHOR


def test_same_inputs_same_bytes_and_ivorn(data_dir: Path) -> None:
    recs = real_counterparts(data_dir, "Swift:655721")
    a = vo.counterpart_voevent(recs, author_ivorn=AUTHOR, authored=T)
    b = vo.counterpart_voevent(list(reversed(recs)), author_ivorn=AUTHOR, authored=T)
    assert a.xml == b.xml and a.ivorn == b.ivorn
    assert a.filename == b.filename and a.filename.startswith("Swift_655721_r1_1-")


@pytest.mark.parametrize("role", ["test", "utility"])
def test_non_observation_events_are_never_observation_voevents(role: str) -> None:
    doc = vo.counterpart_voevent([record(role=role)], author_ivorn=AUTHOR, authored=T)
    assert _load(doc).attrib["role"] == doc.role == "test"


def test_author_supersedes_and_retracts_in_order(data_dir: Path) -> None:
    author = vo.VOEventAuthor(AUTHOR)
    eid = "Swift:655721"
    v1 = author.counterparts(real_counterparts(data_dir, eid, region_version=1), T)
    v1b = author.counterparts(real_counterparts(data_dir, eid, region_version=1)[:1], T)
    v2 = author.counterparts(real_counterparts(data_dir, eid, region_version=2,
                                               notice_version=2), T)
    assert [d.ivorn for d in v1 + v1b + v2] == [
        f"{AUTHOR}#{eid}/r1/1", f"{AUTHOR}#{eid}/r1/2", f"{AUTHOR}#{eid}/r2/1"]
    trig = swift_trigger(data_dir)["ivorn"]
    assert _cites(_load(v1[0])) == [("followup", trig)]
    assert _cites(_load(v1b[0])) == [("followup", trig), ("supersedes", v1[0].ivorn)]
    assert _cites(_load(v2[0])) == [("followup", trig), ("supersedes", v1b[0].ivorn)]

    retraction = {"event_id": eid, "messenger": "GRB", "mission": "Swift", "instrument": "BAT",
                  "role": "observation", "notice_version": 3, "region_version": 2,
                  "trigger_time": "2015-09-15T21:18:24.86Z",
                  "retracted_at": "2015-09-15T22:00:00Z", "withdrawn_alert_ids": ["1", "2"],
                  "reason": "not a GRB", "notice_ivorn": trig}
    doc = author.retraction(retraction, T)
    assert doc is not None and doc.ivorn == f"{AUTHOR}#{eid}/retraction/n3"
    v = _load(doc)
    assert _cites(v) == [("retraction", d.ivorn) for d in v1 + v1b + v2] + [("followup", trig)]
    assert not v.xpath("WhereWhen")
    assert vp.get_toplevel_params(v)["reason"]["value"] == "not a GRB"
    # An event we never announced is announced as retracted all the same, citing only
    # the mission's notice.
    other = author.retraction({**retraction, "event_id": "Swift:other"}, T)
    assert _cites(_load(other)) == [("followup", trig)]
    assert "announced no counterpart candidate" in other.xml.decode()


def test_withdrawn_records_do_not_make_voevents() -> None:
    author = vo.VOEventAuthor(AUTHOR)
    assert author.counterparts([record(status="withdrawn")], T) == []
    with pytest.raises(vo.InvalidVOEvent, match="withdrawn"):
        vo.counterpart_voevent([record(status="withdrawn")], author_ivorn=AUTHOR, authored=T)


def test_many_candidates_stay_under_the_vtp_limit() -> None:
    recs = [record(event_id="LVK:S1", messenger="GW", separation_deg=None, separation_ratio=None,
                   prob_density_deg2=1e-3, alert_id=str(10**12 + i), object_id=f"ZTF24a{i:05d}",
                   rank=i + 1, mag=19.0, mag_err=0.1, band="r", classification="SN candidate",
                   classification_rule="rising, no stellar counterpart within 1 arcsec")
            for i in range(2000)]
    doc = vo.counterpart_voevent(recs, author_ivorn=AUTHOR, authored=T, max_candidates=20)
    v = _load(doc)
    assert len(doc.xml) < vo.MAX_BYTES
    assert len(v.xpath("What/Group[@type='counterpart_candidate']")) == 20
    assert vp.get_toplevel_params(v)["n_candidates"]["value"] == "2000"
    # Listing them all would exceed what Comet accepts: refused before sending.
    with pytest.raises(vo.InvalidVOEvent, match="exceeds the 99999-byte VTP limit"):
        vo.counterpart_voevent(recs, author_ivorn=AUTHOR, authored=T, max_candidates=2000)


@pytest.mark.parametrize("candidates, message", [
    ([], "no candidates"),
    ([record(event_id="A"), record(event_id="B")], "several event versions"),
    ([record(event_id="A"), record(event_id="A", role="test", alert_id="2")], "several roles"),
    ([record(p_chance=float("nan"))], "candidate #0: p_chance"),
    ([record(ra=None)], "candidate #0: ra"),
])
def test_unusable_candidates_are_refused(candidates: list[dict], message: str) -> None:
    with pytest.raises(vo.InvalidVOEvent, match=message):
        vo.counterpart_voevent(candidates, author_ivorn=AUTHOR, authored=T)


def test_naive_authoring_date_is_refused() -> None:
    with pytest.raises(vo.InvalidVOEvent, match="timezone-aware"):
        vo.counterpart_voevent([record()], author_ivorn=AUTHOR, authored=datetime(2026, 1, 1))


def test_retraction_needs_a_valid_record() -> None:
    with pytest.raises(vo.InvalidVOEvent, match="retraction record"):
        vo.retraction_voevent({}, author_ivorn=AUTHOR, authored=T, retracts=[])


def test_check_refuses_invalid_documents() -> None:
    good = vo.counterpart_voevent([record()], author_ivorn=AUTHOR, authored=T).xml
    assert vo.check(good).startswith(AUTHOR + "#")
    root = etree.fromstring(good)
    etree.SubElement(root.find("What"), "Bogus").text = "x"
    with pytest.raises(vo.InvalidVOEvent, match="not valid VOEvent 2.0.*Bogus"):
        vo.check(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    no_local = re.sub(rb'ivorn="[^"]+"', f'ivorn="{AUTHOR}"'.encode(), good, count=1)
    with pytest.raises(vo.InvalidVOEvent, match="local-id"):
        vo.check(no_local)
    with pytest.raises(vo.InvalidVOEvent, match="not a VOEvent 2.0 document"):
        vo.check(b"<?xml version='1.0'?><Transport role='ack'/>")
    with pytest.raises(vo.InvalidVOEvent, match="not a VOEvent 2.0 document"):
        vo.check(b"<VOEvent")


def test_ivorns_quote_what_an_ivorn_may_not_hold() -> None:
    ivorn = vo.counterpart_ivorn(AUTHOR, "Mission:name with/slash#1", 2, 3)
    assert ivorn == f"{AUTHOR}#Mission:name%20with%2Fslash%231/r2/3"
    doc = vo.counterpart_voevent([record(event_id="Mission:name with/slash#1")],
                                 author_ivorn=AUTHOR, authored=T)
    assert vo.check(doc.xml) == doc.ivorn


def test_write_voevents(tmp_path: Path) -> None:
    docs = vo.VOEventAuthor(AUTHOR).counterparts(
        [record(event_id="E:1"), record(event_id="E:2", alert_id="9")], T)
    paths = vo.write_voevents(docs, tmp_path / "voevents")
    assert [p.name for p in paths] == [d.filename for d in docs]
    assert [p.read_bytes() for p in paths] == [d.xml for d in docs]
