"""Building our VOEvents 2.0: one per event version that has candidates, one per
retraction, and their IVORNs.

Built with voevent-parse; every document passes :func:`publishers.voevent_check.check`
(valid VOEvent 2.0) before it is returned. The stateful author that numbers and
cites them is :class:`publishers.voevent.VOEventAuthor`.

Counterpart VOEvent of one ``(event_id, region_version)``:

* ``Who``: our author IVORN (``publish.author_ivorn``) and the authoring date;
* ``What``: top-level Params (event, versions, number of candidates), a Group
  ``trigger`` with the trigger's parameters (mission, instrument, t0, notice
  version, the trigger's IVORNs, its significance figures), and one Group per
  candidate (object id, alert id, position, time, magnitude, credible level,
  p_chance, rank …), best rank first, at most ``publish.voevent_max_candidates``;
* ``WhereWhen``: position and time of the best candidate (rank 1);
* ``How``: what mm_broker did, with a Reference;
* ``Why``: one Inference per listed candidate (``relation="associated"``), with
  the classification and the matching rule;
* ``Citations``: ``followup`` of the trigger notice's IVORN, ``supersedes`` of our
  previous VOEvent for the event when this is an update.

Retraction VOEvent: ``Citations`` ``retraction`` of every VOEvent of ours for the
event (and ``followup`` of the mission's retraction notice).

``role`` is ``observation`` only for observation notices; anything else is ``test``.
IVORNs are deterministic, so a replay issues the same IVORNs:
``<author>#<event_id>/r<region_version>/<issue>`` (``issue`` counts VOEvents of the
same region version, from 1) and ``<author>#<event_id>/retraction/n<notice_version>``.

Examples
--------
>>> counterpart_ivorn("ivo://mm-broker.local/counterparts", "LVK:S240115ak", 2)
'ivo://mm-broker.local/counterparts#LVK:S240115ak/r2/1'
>>> retraction_ivorn("ivo://mm-broker.local/counterparts", "LVK:S240115ak", 3)
'ivo://mm-broker.local/counterparts#LVK:S240115ak/retraction/n3'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mm_broker import __version__
from publishers import records as rec
from publishers import schema as sch
from publishers.voevent_check import InvalidVOEvent, check
from publishers.voeventparse_compat import vp

__all__ = ["POSITION_ERROR_DEG", "VOEventDoc", "counterpart_ivorn", "counterpart_voevent",
           "retraction_ivorn", "retraction_voevent"]

#: Position error written in WhereWhen, degrees: 1 arcsec, a conservative bound on
#: the astrometric accuracy of ZTF and LSST difference-image detections.
POSITION_ERROR_DEG = 1.0 / 3600.0

_SAFE = "-._~!$&'()*+,;=:@"  # kept as is in the local ID; '/' and the rest are %-encoded


@dataclass(frozen=True)
class VOEventDoc:
    """One of our VOEvents, serialised.

    Attributes
    ----------
    ivorn : str
    role : str
        ``"observation"`` or ``"test"``.
    kind : str
        ``"counterparts"`` or ``"retraction"``.
    event_id : str
    xml : bytes
        The document as sent (UTF-8, with XML declaration).
    citations : tuple of (cite, ivorn)
        What the VOEvent cites, e.g. ``(("followup", "ivo://nasa.gsfc.gcn/…"),)``.
    region_version : int or None
        The event's region version a counterpart VOEvent announces (None for a
        retraction).
    """

    ivorn: str
    role: str
    kind: str
    event_id: str
    xml: bytes = field(repr=False)
    citations: tuple[tuple[str, str], ...] = ()
    region_version: int | None = None

    @property
    def filename(self) -> str:
        """A file name for the document: readable, deterministic and unique per IVORN."""
        local = self.ivorn.split("#", 1)[1]
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", local).strip("_")[:100]
        digest = hashlib.sha1(self.ivorn.encode(), usedforsecurity=False).hexdigest()[:8]
        return f"{readable}-{digest}.xml"


def _quote(event_id: str) -> str:
    return quote(event_id, safe=_SAFE)


def counterpart_ivorn(author_ivorn: str, event_id: str, region_version: int,
                      issue: int = 1) -> str:
    """IVORN of our ``issue``-th counterpart VOEvent for one event region version."""
    if issue < 1:
        raise ValueError("issue counts from 1")
    return f"{author_ivorn}#{_quote(event_id)}/r{region_version}/{issue}"


def retraction_ivorn(author_ivorn: str, event_id: str, notice_version: int) -> str:
    """IVORN of our retraction VOEvent for the retraction notice ``notice_version``."""
    return f"{author_ivorn}#{_quote(event_id)}/retraction/n{notice_version}"


# --------------------------------------------------------------------------- #
# Building blocks
# --------------------------------------------------------------------------- #


def _iso_date(t: datetime) -> str:
    if t.tzinfo is None:
        raise InvalidVOEvent("authoring date must be timezone-aware (UTC)")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _param(name: str, value: Any, unit: str | None = None, ucd: str | None = None
           ) -> Any | None:
    """A What/Param, or ``None`` for a value that does not apply."""
    if value is None:
        return None
    if isinstance(value, bool):
        return vp.Param(name, value="true" if value else "false", ucd=ucd, dataType="string")
    if isinstance(value, int):
        return vp.Param(name, value=str(value), unit=unit, ucd=ucd, dataType="int")
    if isinstance(value, float):
        return vp.Param(name, value=repr(value), unit=unit, ucd=ucd, dataType="float")
    return vp.Param(name, value=str(value), unit=unit, ucd=ucd, dataType="string")


def _group(name: str, type_: str, params: Iterable[Any | None],
           description: str | None = None) -> Any:
    g = vp.Group([p for p in params if p is not None], name=name, type=type_)
    if description:
        g.Description = description
    return g


def _trigger_group(r: Mapping[str, Any]) -> Any:
    """Group ``trigger``: what the mission said, as far as the record carries it."""
    params = [
        _param("event_id", r["event_id"], ucd="meta.id"),
        _param("messenger", r["messenger"]),
        _param("mission", r["mission"]),
        _param("instrument", r["instrument"], ucd="instr"),
        _param("trigger_time", r.get("trigger_time"), ucd="time.epoch"),
        _param("notice_version", r["notice_version"], ucd="meta.version"),
        _param("region_version", r.get("region_version"), ucd="meta.version"),
        _param("trigger_ivorn", r.get("trigger_ivorn"), ucd="meta.ref.ivoid"),
        _param("notice_ivorn", r.get("notice_ivorn"), ucd="meta.ref.ivoid"),
    ]
    for key, value in sorted((r.get("significance") or {}).items()):
        params.append(_param(f"significance.{key}", value))
    return _group("trigger", "trigger", params,
                  "Parameters of the multi-messenger trigger, as its notices gave them.")


def _candidate_group(i: int, r: Mapping[str, Any]) -> Any:
    params = [
        _param("rank", r["rank"], ucd="meta.number"),
        _param("survey", r["survey"]),
        _param("object_id", r["object_id"], ucd="meta.id"),
        _param("alert_id", r["alert_id"], ucd="meta.id"),
        _param("ra", r["ra"], unit="deg", ucd="pos.eq.ra"),
        _param("dec", r["dec"], unit="deg", ucd="pos.eq.dec"),
        _param("alert_time", r["alert_time"], ucd="time.epoch"),
        _param("delta_t", r["delta_t_s"], unit="s", ucd="time.interval"),
        _param("mag", r.get("mag"), unit="mag", ucd="phot.mag"),
        _param("mag_err", r.get("mag_err"), unit="mag", ucd="stat.error;phot.mag"),
        _param("band", r.get("band"), ucd="instr.bandpass"),
        _param("credible_level", r["credible_level"], ucd="stat.probability"),
        _param("prob_density", r["prob_density_deg2"], unit="deg-2", ucd="stat.probability"),
        _param("separation", r["separation_deg"], unit="deg", ucd="pos.angDistance"),
        _param("separation_ratio", r["separation_ratio"]),
        _param("p_chance", r["p_chance"], ucd="stat.probability"),
        _param("classification", r.get("classification"), ucd="src.class"),
        _param("status", r["status"]),
    ]
    return _group(f"candidate_{i}", "counterpart_candidate", params)


def _rule(r: Mapping[str, Any]) -> str:
    """The matching rule of one candidate, in words."""
    where = []
    if r["credible_level"] is not None:
        where.append(f"inside the {100 * r['credible_level']:.1f} % credible region")
    if r["separation_deg"] is not None:
        where.append(f"{r['separation_deg']:.4g} deg from the centre of the error circle")
    text = (f"{r['survey']} alert {r['alert_id']} of {r['object_id']} "
            f"{' and '.join(where) or 'inside the localisation'}, "
            f"{r['delta_t_s']:+.0f} s from the trigger time")
    if r["p_chance"] is not None:
        text += f"; chance-coincidence probability {r['p_chance']:.3g}"
    if r.get("classification_rule"):
        text += f". Classification rule: {r['classification_rule']}"
    return text + "."


def _inference(r: Mapping[str, Any]) -> Any:
    inf = vp.Inference(relation="associated", name=r["object_id"],
                       concept=r.get("classification"))
    inf.Description = _rule(r)
    return inf


def _new(ivorn: str, role: str, author_ivorn: str, authored: datetime) -> Any:
    stream, local = ivorn[len("ivo://"):].split("#", 1)
    v = vp.Voevent(stream=stream, stream_id=local, role=role)
    v.Who.AuthorIVORN = author_ivorn
    v.Who.Date = _iso_date(authored)
    vp.set_author(v, title="mm_broker multi-messenger counterpart broker",
                  shortName="mm_broker")
    return v


def _finish(v: Any, ivorn: str, role: str, kind: str, event_id: str,
            citations: list[tuple[str, str]], region_version: int | None = None
            ) -> VOEventDoc:
    if citations:
        vp.add_citations(v, [vp.EventIvorn(iv, cite) for cite, iv in citations])
    xml = vp.dumps(v, pretty_print=True)
    check(xml)
    return VOEventDoc(ivorn=ivorn, role=role, kind=kind, event_id=event_id, xml=xml,
                      citations=tuple(citations), region_version=region_version)


# --------------------------------------------------------------------------- #
# Documents
# --------------------------------------------------------------------------- #


def _checked(candidates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    schema = sch.load("counterpart")
    out = []
    for i, r in enumerate(candidates):
        try:
            out.append(rec.validate(r, schema))
        except rec.InvalidRecord as exc:
            raise InvalidVOEvent(f"candidate #{i}: {exc}") from exc
    return out


def counterpart_voevent(candidates: Sequence[Mapping[str, Any]], *, author_ivorn: str,
                        authored: datetime, issue: int = 1, supersedes: Sequence[str] = (),
                        max_candidates: int = 20, reference_url: str | None = None
                        ) -> VOEventDoc:
    """The VOEvent of the counterpart candidates of one event region version.

    Parameters
    ----------
    candidates : sequence of mapping
        Counterpart records with ``status == "candidate"``, all of the same
        ``event_id`` and ``region_version``.
    author_ivorn : str
        Our author IVORN.
    authored : datetime
        Authoring date (timezone-aware). The replay passes its own clock, so that
        a replay produces the same bytes.
    issue : int
        Number of this VOEvent among ours for the same region version (from 1).
    supersedes : sequence of str
        IVORNs of our earlier VOEvents for the event that this one replaces.
    max_candidates : int
        Candidates listed (best rank first).
    reference_url : str, optional
        URI cited in How (default: ``author_ivorn``).

    Returns
    -------
    VOEventDoc

    Raises
    ------
    InvalidVOEvent
        If the candidates are empty, mixed, withdrawn or invalid records, or the
        document is not valid VOEvent 2.0.
    """
    if not candidates:
        raise InvalidVOEvent("no candidates: a counterpart VOEvent needs at least one")
    recs = _checked(candidates)
    identity = {(r["event_id"], r["region_version"]) for r in recs}
    if len(identity) != 1:
        raise InvalidVOEvent(f"candidates of several event versions: {sorted(identity)}")
    if any(r["status"] != "candidate" for r in recs):
        raise InvalidVOEvent("withdrawn associations are not announced as candidates")
    roles = {r["role"] for r in recs}
    if len(roles) != 1:
        raise InvalidVOEvent(f"candidates with several roles: {sorted(roles)}")
    event_id, region_version = identity.pop()
    role = "observation" if roles == {"observation"} else "test"
    ordered = sorted(recs, key=lambda r: (r["rank"], r["alert_time"], r["alert_id"]))
    listed = ordered[:max_candidates]
    best = ordered[0]
    trigger = max(recs, key=lambda r: r["notice_version"])
    ivorn = counterpart_ivorn(author_ivorn, event_id, region_version, issue)

    v = _new(ivorn, role, author_ivorn, authored)
    top = [
        _param("event_id", event_id, ucd="meta.id"),
        _param("messenger", best["messenger"]),
        _param("region_version", region_version, ucd="meta.version"),
        _param("notice_version", trigger["notice_version"], ucd="meta.version"),
        _param("issue", issue, ucd="meta.number"),
        _param("n_candidates", len(recs), ucd="meta.number"),
        _param("n_listed", len(listed), ucd="meta.number"),
        _param("mm_broker_version", __version__),
    ]
    v.What.extend([p for p in top if p is not None])
    v.What.append(_trigger_group(trigger))
    v.What.extend(_candidate_group(i, r) for i, r in enumerate(listed, start=1))
    v.What.Description = (
        f"{len(recs)} optical counterpart candidate(s) of {best['messenger']} event "
        f"{event_id} (region version {region_version}); the {len(listed)} best ranked "
        "are listed; all are on mm_broker's Kafka counterpart topics.")
    vp.add_where_when(v, coords=vp.Position2D(ra=best["ra"], dec=best["dec"],
                                              err=POSITION_ERROR_DEG, units="deg",
                                              system=vp.definitions.sky_coord_system.utc_icrs_topo),
                      obs_time=_utc(best["alert_time"]),
                      observatory_location=vp.definitions.observatory_location.geosurface)
    vp.add_how(v, descriptions=[
        f"mm_broker {__version__}: {best['survey']} alerts joined against the "
        f"{best['messenger']} localisation of {best['mission']} {best['instrument']} "
        "(credible region or error circle, time window around the trigger time); "
        "candidates ranked by chance-coincidence probability."],
        references=vp.Reference(reference_url or author_ivorn))
    vp.add_why(v, inferences=[_inference(r) for r in listed])
    citations = [("followup", iv) for iv in _trigger_ivorns(trigger)]
    citations += [("supersedes", iv) for iv in supersedes if iv != ivorn]
    return _finish(v, ivorn, role, "counterparts", event_id, citations, region_version)


def _trigger_ivorns(r: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("notice_ivorn", "trigger_ivorn"):
        iv = r.get(key)
        if iv and iv not in out:
            out.append(iv)
    return out


def retraction_voevent(retraction: Mapping[str, Any], *, author_ivorn: str,
                       authored: datetime, retracts: Sequence[str],
                       reference_url: str | None = None) -> VOEventDoc:
    """The VOEvent retracting our VOEvents of an event the mission retracted.

    Parameters
    ----------
    retraction : mapping
        A retraction record (fields of ``retraction-vN.avsc``).
    author_ivorn : str
    authored : datetime
    retracts : sequence of str
        IVORNs of our VOEvents for the event (each cited with ``retraction``). May be
        empty: an event is announced as retracted whether or not we had announced
        candidates for it (a facility may follow the trigger itself); the VOEvent
        then cites only the mission's notices (``followup``).
    reference_url : str, optional

    Raises
    ------
    InvalidVOEvent
        If the record is invalid or the document is not valid VOEvent 2.0.
    """
    try:
        r = rec.validate(retraction, sch.load("retraction"))
    except rec.InvalidRecord as exc:
        raise InvalidVOEvent(f"retraction record: {exc}") from exc
    role = "observation" if r["role"] == "observation" else "test"
    ivorn = retraction_ivorn(author_ivorn, r["event_id"], r["notice_version"])
    v = _new(ivorn, role, author_ivorn, authored)
    top = [
        _param("event_id", r["event_id"], ucd="meta.id"),
        _param("messenger", r["messenger"]),
        _param("retracted_at", r["retracted_at"], ucd="time.epoch"),
        _param("reason", r["reason"]),
        _param("n_withdrawn", len(r["withdrawn_alert_ids"]), ucd="meta.number"),
        _param("mm_broker_version", __version__),
    ]
    v.What.extend([p for p in top if p is not None])
    v.What.append(_trigger_group(r))
    withdrawn = [_param("alert_id", a, ucd="meta.id") for a in r["withdrawn_alert_ids"]]
    if withdrawn:
        v.What.append(_group("withdrawn", "withdrawn_candidates", withdrawn))
    v.What.Description = (
        f"{r['mission']} retracted {r['messenger']} event {r['event_id']}: the counterpart "
        "candidates announced in the cited VOEvents are withdrawn." if retracts else
        f"{r['mission']} retracted {r['messenger']} event {r['event_id']}; mm_broker had "
        "announced no counterpart candidate for it.")
    v.remove(v.WhereWhen)  # no position: WhereWhen is optional but may not be empty
    vp.add_how(v, descriptions=[f"mm_broker {__version__}: retraction of a trigger by its "
                                "mission withdraws every counterpart candidate of the event."],
               references=vp.Reference(reference_url or author_ivorn))
    citations = [("retraction", iv) for iv in dict.fromkeys(retracts)]
    citations += [("followup", iv) for iv in _trigger_ivorns(r)]
    return _finish(v, ivorn, role, "retraction", r["event_id"], citations)

