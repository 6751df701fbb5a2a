"""Alert load for the streaming benchmarks (``latency``, ``soak``).

Copies of one real ZTF alert patched in place (:class:`AlertTemplate`), Einstein
Probe circles to store as regions (:func:`ep_notice`), a producer loop at a fixed rate
(:func:`pace`), and a reader of the counterpart topics that measures each
counterpart's latency (:class:`CounterpartFollower`).
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
from confluent_kafka import Consumer

#: The real ZTF alert copied by ``latency`` and ``soak``, relative to the data directory.
LATENCY_ALERT = "alerts/ztf/avro/20181129_fink-alert-simulator/697251920115015007.avro"
EP_WXT_SCHEMA = ("https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/"
                 "alert.schema.json")
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def zigzag_varint(value: int) -> bytes:
    """Avro's encoding of a long: zig-zag, then base-128 varint.

    Parameters
    ----------
    value : int
        A signed 64-bit integer.

    Returns
    -------
    bytes
        Its Avro encoding (1 to 10 bytes).
    """
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte, z = z & 0x7F, z >> 7
        if not z:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def jd_datetime(jd: float) -> datetime:
    """The UTC time of a Julian date.

    Parameters
    ----------
    jd : float
        Julian date (UTC).

    Returns
    -------
    datetime
        Timezone-aware UTC time.
    """
    return datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=jd - 2451545.0)


class AlertTemplate:
    """Copies of one real ZTF alert (an Avro container, as ZTF sends it on Kafka) that
    differ in ``candid``, ``objectId`` and position.

    fastavro's writer takes about 2 ms per 66 kB alert, too slow to produce 1,700
    alerts/s from one thread; here a copy is the template's bytes with those fields
    overwritten in place (same lengths: 9-byte candid varints, objectIds of the
    template's length, 8-byte doubles), a few microseconds. The offsets are found by
    encoding the template once with sentinel values, and a first copy is decoded back
    as a check. ``cutouts=False`` empties the three cutout stamps (~41 kB: the broker
    never reads them; see :func:`benchmarks.soak.bench_soak`).
    """

    _CANDID = 2**56 + 987_654_321  # 9 bytes, like every candid in [2**55, 2**62)
    _RA, _DEC = 123.45678901234567, -12.345678901234567

    def __init__(self, path: Path, cutouts: bool = True) -> None:
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        rec: Any = next(reader)
        cand = rec["candidate"]
        self.object_id = str(rec["objectId"])
        self.ra, self.dec = float(cand["ra"]), float(cand["dec"])
        self.jd, self.first_jd = float(cand["jd"]), float(cand["jdstarthist"])
        rec["candid"] = cand["candid"] = self._CANDID
        cand["ra"], cand["dec"] = self._RA, self._DEC
        sentinel_oid = "~" * len(self.object_id)
        rec["objectId"] = sentinel_oid
        if not cutouts:
            for name in CUTOUT_FIELDS:
                if rec.get(name):
                    rec[name]["stampData"] = b""
        buf = io.BytesIO()
        fastavro.writer(buf, fastavro.parse_schema(reader.writer_schema), [rec], codec="null")
        self.data = buf.getvalue()

        def where(needle: bytes, count: int) -> list[int]:
            found, at = [], self.data.find(needle)
            while at >= 0:
                found.append(at)
                at = self.data.find(needle, at + 1)
            if len(found) != count:
                raise RuntimeError(f"{path.name}: sentinel found {len(found)} times, "
                                   f"expected {count}")
            return found

        self._candid_at = where(zigzag_varint(self._CANDID), 2)
        [self._ra_at] = where(struct.pack("<d", self._RA), 1)
        [self._dec_at] = where(struct.pack("<d", self._DEC), 1)
        [self._oid_at] = where(sentinel_oid.encode(), 1)
        self._pack = struct.Struct("<d").pack
        oid = self.object_id_for(1)
        got: Any = next(fastavro.reader(io.BytesIO(self.copy(10**17 + 1, oid, 1.5, -2.5))))
        if (got["candid"], got["candidate"]["candid"], got["objectId"], got["candidate"]["ra"],
                got["candidate"]["dec"]) != (10**17 + 1, 10**17 + 1, oid, 1.5, -2.5):
            raise RuntimeError(f"{path.name}: patched copy does not decode as written")

    def object_id_for(self, i: int) -> str:
        """A distinct objectId of the template's length for copy ``i`` (``ZTF26…``)."""
        width = len(self.object_id) - 5
        letters = []
        for _ in range(width):
            i, r = divmod(i, 26)
            letters.append(chr(97 + r))
        return "ZTF26" + "".join(reversed(letters))

    def copy(self, candid: int, object_id: str | None = None, ra: float | None = None,
             dec: float | None = None) -> bytes:
        """The template's bytes with these values.

        Parameters
        ----------
        candid : int
            Candidate id, in ``[2**55, 2**62)`` (a 9-byte varint, as the template's).
        object_id : str, optional
            ObjectId of the template's length (:meth:`object_id_for`); default the
            real alert's.
        ra, dec : float, optional
            Position, degrees; default the real alert's.

        Returns
        -------
        bytes
            One Avro container with one alert.

        Raises
        ------
        ValueError
            If ``candid`` or ``object_id`` does not have the template's length.
        """
        varint = zigzag_varint(candid)
        if len(varint) != 9:
            raise ValueError(f"candid {candid} is not in [2**55, 2**62)")
        oid = (self.object_id if object_id is None else object_id).encode()
        if len(oid) != len(self.object_id):
            raise ValueError(f"objectId {object_id!r} is not {len(self.object_id)} bytes")
        out = bytearray(self.data)
        for at in self._candid_at:
            out[at:at + 9] = varint
        out[self._oid_at:self._oid_at + len(oid)] = oid
        out[self._ra_at:self._ra_at + 8] = self._pack(self.ra if ra is None else ra)
        out[self._dec_at:self._dec_at + 8] = self._pack(self.dec if dec is None else dec)
        return bytes(out)


def ep_notice(ident: str, t0: datetime, ra: float, dec: float, radius: float) -> bytes:
    """An Einstein Probe WXT notice (GCN JSON): a circle of 90 % radius ``radius``.

    Parameters
    ----------
    ident : str
        Its id (the event id is derived from it).
    t0 : datetime
        Trigger time (UTC).
    ra, dec, radius : float
        Centre and 90 % radius, degrees.

    Returns
    -------
    bytes
        The notice as GCN Kafka carries it.
    """
    return json.dumps({"$schema": EP_WXT_SCHEMA, "instrument": "WXT",
                       "trigger_time": t0.isoformat().replace("+00:00", "Z"), "id": [ident],
                       "ra": ra, "dec": dec, "ra_dec_error": radius}).encode()


def pace(producer: Any, topic: str, make: Callable[[int], tuple[bytes, bytes]], n: int,
          rate: float, sent_at: np.ndarray, stop: threading.Event | None = None) -> int:
    """Produce ``make(i)`` for i < n at ``rate`` messages/s, catching up in bursts when
    late.

    Parameters
    ----------
    producer : confluent_kafka.Producer
        The producer (flushed at the end).
    topic : str
        Destination topic.
    make : callable
        ``make(i) -> (key, value)``.
    n : int
        Messages to send.
    rate : float
        Messages per second.
    sent_at : ndarray
        ``sent_at[i]`` gets the wall time (Unix s) of the ``produce`` of message ``i``.
    stop : threading.Event, optional
        Stop sending when set.

    Returns
    -------
    int
        Messages sent.
    """
    start = time.time()
    i = 0
    while i < n and not (stop is not None and stop.is_set()):
        target = min(n, int((time.time() - start) * rate) + 1)
        while i < target:
            key, value = make(i)
            try:
                producer.produce(topic, value=value, key=key)
            except BufferError:  # local queue full: let librdkafka deliver, then retry
                producer.poll(0.05)
                continue
            sent_at[i] = time.time()
            i += 1
        producer.poll(0)
        pause = start + i / rate - time.time()
        if pause > 0:
            time.sleep(min(pause, 0.005))
    producer.flush(60)
    return i


class CounterpartFollower(threading.Thread):
    """Reads counterpart topics while a benchmark runs: for each message keyed
    ``event|version|alert_id`` with ``alert_id = base + i``, the latency is the
    message's timestamp (set when the service produced it) minus ``sent_at[i]``.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    topics : list of str
        Counterpart topics to read from the beginning.
    sent_at : ndarray
        Send times of the alerts (filled by :func:`pace`).
    base : int
        ``alert_id`` of alert 0.

    Attributes
    ----------
    keys : set of str
        Distinct message keys seen.
    messages : int
        Messages read.
    latency : list of tuple
        ``(sent at, latency s)`` per counterpart of one of our alerts.
    stop : threading.Event
        Set it to end the thread.
    """

    def __init__(self, bootstrap: str, topics: list[str], sent_at: np.ndarray,
                 base: int) -> None:
        super().__init__(name="counterpart-follower", daemon=True)
        self.bootstrap, self.topics, self.sent_at, self.base = bootstrap, topics, sent_at, base
        self.stop = threading.Event()
        self.keys: set[str] = set()
        self.messages = 0
        self.latency: list[tuple[float, float]] = []  # (sent at, latency s)
        self.error: str | None = None

    def run(self) -> None:
        """Read until :attr:`stop` is set."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap,
                             "group.id": f"bench-follower-{id(self)}-{time.time_ns()}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(self.topics)
        try:
            while not self.stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    self.error = str(msg.error())
                    continue
                key = (msg.key() or b"").decode()
                self.messages += 1
                self.keys.add(key)
                alert_id = key.rsplit("|", 1)[-1]
                if not alert_id.isdigit():
                    continue
                i = int(alert_id) - self.base
                if 0 <= i < len(self.sent_at) and self.sent_at[i] > 0:
                    sent = float(self.sent_at[i])
                    self.latency.append((sent, msg.timestamp()[1] / 1e3 - sent))
        finally:
            consumer.close()
