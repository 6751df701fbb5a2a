"""Our VOEvents through the real local Comet: a real subscriber receives them; duplicates
are nak'd; a broker that does not whitelist us refuses; the whole Publisher end to end."""

from __future__ import annotations

import collections
import collections.abc
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
import voeventparse as vp  # noqa: E402
from pub_records import real_counterparts, record, swift_trigger  # noqa: E402

from mm_broker.app.services.process import port_open, wait_for  # noqa: E402
from mm_broker.core import config  # noqa: E402
from publishers import consume as cons  # noqa: E402
from publishers import voevent as vo  # noqa: E402
from publishers.kafka import Topics, delete_topics  # noqa: E402
from publishers.publish import Publisher  # noqa: E402
from publishers.vtp import VTPClient, submit  # noqa: E402

pytestmark = pytest.mark.services


def _comet(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "mm_broker.app.services.comet_launcher", "--bind", "127.0.0.1",
           "--", "-n", "--pidfile=", "comet", *args]
    with open(cwd / "comet.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def subscriber(running: config.Settings, tmp_path: Path) -> Iterator[Path]:
    """A real Comet subscriber of our local broker, saving what it receives."""
    c = running.tree["comet"]
    (tmp_path / "db").mkdir()
    out = tmp_path / "received"
    out.mkdir()
    proc = _comet([f"--remote=127.0.0.1:{c['broadcast_port']}",
                   "--local-ivo=ivo://mm-broker.test/subscriber", f"--eventdb={tmp_path / 'db'}",
                   "--save-event", f"--save-event-directory={out}"], tmp_path)
    try:
        time.sleep(2.0)  # let it connect before anything is broadcast
        assert proc.poll() is None, (tmp_path / "comet.log").read_text()
        yield out
    finally:
        _stop(proc)


def _received(folder: Path, needle: bytes, timeout: float = 30) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [p for p in folder.iterdir() if p.is_file() and needle in p.read_bytes()]
        if hits:
            return hits
        time.sleep(0.3)
    return []


def _vtp_levels(caplog: pytest.LogCaptureFixture, ivorn: str) -> list[int]:
    return [r.levelno for r in caplog.records if r.name == "mm_broker.vtp" and ivorn in
            r.getMessage()]


def test_a_real_subscriber_receives_our_voevent(running: config.Settings, subscriber: Path,
                                                data_dir: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mm_broker.vtp")
    eid = f"Swift:test-{uuid.uuid4().hex[:10]}"
    author = vo.VOEventAuthor.from_settings(running)
    [doc] = author.counterparts(real_counterparts(data_dir, eid, role="test"),
                                datetime.now(UTC))
    client = VTPClient.from_settings(running)
    [first] = client.broadcast([doc], directory=tmp_path / "voevents")
    assert first.status == "ack", first
    # One acknowledgement is a detail (DEBUG): it must not bury a summary.
    assert _vtp_levels(caplog, doc.ivorn) == [logging.DEBUG]
    assert (tmp_path / "voevents" / doc.filename).read_bytes() == doc.xml
    hits = _received(subscriber, doc.ivorn.encode())
    assert hits, "the subscriber did not receive our VOEvent"
    v = vp.loads(hits[0].read_bytes())
    assert vp.valid_as_v2_0(v) and v.attrib["ivorn"] == doc.ivorn
    assert v.attrib["role"] == "test"
    cites = [(e.attrib["cite"], str(e)) for e in v.xpath("Citations/EventIVORN")]
    assert cites == [("followup", swift_trigger(data_dir)["ivorn"])]
    # Comet remembers the bytes: the same VOEvent again is refused with its reason.
    [again] = client.broadcast([doc])
    assert again.status == "nak" and "Previously seen" in (again.reason or "")
    assert _vtp_levels(caplog, doc.ivorn) == [logging.DEBUG, logging.WARNING]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_broker_that_does_not_whitelist_us_refuses(tmp_path: Path) -> None:
    """A second Comet accepting submissions only from 10.0.0.0/8: 127.0.0.1 is refused."""
    port = _free_port()
    (tmp_path / "db").mkdir()
    proc = _comet(["--receive", f"--receive-port={port}", "--local-ivo=ivo://mm-broker.test/strict",
                   f"--eventdb={tmp_path / 'db'}", "--author-whitelist=10.0.0.0/8"], tmp_path)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 30, "second Comet",
                 log_file=tmp_path / "comet.log")
        doc = vo.counterpart_voevent([record(role="test")],
                                     author_ivorn="ivo://mm-broker.test/counterparts",
                                     authored=datetime.now(UTC))
        result = submit(doc.xml, "127.0.0.1", port, timeout=10)
        assert result.status == "refused" and not result.ok
        assert "whitelist" in (result.reason or "")
        log = (tmp_path / "comet.log").read_text()
        deadline = time.monotonic() + 10
        while "non-whitelisted" not in log and time.monotonic() < deadline:
            time.sleep(0.2)
            log = (tmp_path / "comet.log").read_text()
        assert "Attempted submission from non-whitelisted" in log
    finally:
        _stop(proc)
    assert proc.returncode is not None


def test_invalid_voevents_are_not_sent(running: config.Settings,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mm_broker.vtp")
    client = VTPClient.from_settings(running)
    good = vo.counterpart_voevent([record(role="test")], author_ivorn="ivo://mm-broker.test/c",
                                  authored=datetime.now(UTC))
    broken = good.xml.replace(b"<Who>", b"<Who><Nonsense/>", 1)
    [result] = client.broadcast([broken])
    assert result.status == "invalid" and "not valid VOEvent 2.0" in (result.reason or "")
    down = VTPClient("127.0.0.1", _free_port(), timeout=5)
    [err] = down.broadcast([good])
    assert err.status == "error" and "cannot reach" in (err.reason or "")
    # Refusals and failures stay warnings.
    vtp = [r for r in caplog.records if r.name == "mm_broker.vtp"]
    assert [r.levelno for r in vtp] == [logging.WARNING, logging.WARNING]
    assert "invalid" in vtp[0].getMessage() and "error" in vtp[1].getMessage()


def test_publisher_end_to_end(running: config.Settings, subscriber: Path, data_dir: Path,
                              tmp_path: Path) -> None:
    """Kafka + VOEvents + Comet + files for an update and a retraction of one event."""
    prefix = f"t{uuid.uuid4().hex[:8]}.mm"
    eid = f"Swift:test-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "voevents"
    pub = Publisher.from_settings(running, topic_prefix=prefix, voevent_dir=out)
    assert pub.producer is not None
    t = datetime.now(UTC)
    try:
        v1 = real_counterparts(data_dir, eid, role="test", region_version=1)
        r1 = pub.counterparts(v1, t)
        withdrawn = [{**r, "status": "withdrawn"} for r in v1]
        v2 = real_counterparts(data_dir, eid, role="test", region_version=2, notice_version=2)
        r2 = pub.counterparts(withdrawn + v2 + [record(event_id=eid, ra=float("nan"))], t)
        retraction = {"event_id": eid, "messenger": "GRB", "mission": "Swift",
                      "instrument": "BAT", "role": "test", "notice_version": 3,
                      "region_version": 2, "trigger_time": v1[0]["trigger_time"],
                      "retracted_at": "2015-09-15T23:00:00Z",
                      "withdrawn_alert_ids": [r["alert_id"] for r in v2]}
        r3 = pub.retraction(retraction, t)
        pub.close()
        assert r1.kafka is not None and r1.kafka.delivered == 3
        assert r2.kafka is not None and r2.kafka.delivered == 6
        assert len(r2.kafka.refused) == 1 and len(r2.refused_records) == 1
        assert r3.kafka is not None and r3.kafka.delivered == 1
        docs = r1.voevents + r2.voevents + r3.voevents
        assert [d.kind for d in docs] == ["counterparts", "counterparts", "retraction"]
        assert [s.status for s in r1.submissions + r2.submissions + r3.submissions] == ["ack"] * 3
        assert sorted(p.name for p in out.iterdir()) == sorted(d.filename for d in docs)
        assert ("supersedes", docs[0].ivorn) in docs[1].citations
        assert [c for c in docs[2].citations if c[0] == "retraction"] == [
            ("retraction", docs[0].ivorn), ("retraction", docs[1].ivorn)]
        for d in docs:
            assert _received(subscriber, d.ivorn.encode()), d.ivorn
        topics = Topics(prefix)
        bootstrap = str(running.get("kafka.bootstrap"))
        kafka = pub.producer.config.kafka
        assert not list(cons.read(topics.counterparts("GRB", "observation"), bootstrap,
                                  timeout=10, client_config=kafka))
        items = list(cons.read(topics.counterparts("GRB", "test"), bootstrap, event=eid,
                               timeout=15, client_config=kafka))
        statuses = collections.Counter((i.record["region_version"], i.record["status"])
                                       for i in items)
        assert statuses == {(1, "candidate"): 3, (1, "withdrawn"): 3, (2, "candidate"): 3}
        [retr] = list(cons.read(topics.retractions("test"), bootstrap, event=eid, timeout=15,
                                client_config=kafka))
        assert retr.record["withdrawn_alert_ids"] == retraction["withdrawn_alert_ids"]
    finally:
        delete_topics(pub.producer.config, Topics(prefix).all())
