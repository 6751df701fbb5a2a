"""An object's page data: its records, its light curve and stamps from the archive.

The light curve comes from the enriched alert archive (``<archive>/enriched``, read
through :func:`fink_core.archive_files.archive_dataset`, which sees committed files
only): the ``hist_*`` lists of the object's alerts (previous detections, upper limits
and the detection itself, :mod:`fink_core.model`), merged over its alerts. Without an
archive (the replay of ``make demo`` writes none), the detections of its counterpart
records are the light curve and the page says so.

Cutouts: the enriched archive does not carry them (``fink_core.model``: "cutouts are
not carried"). They are in the alert bytes of the raw archive (``<archive>/raw``,
Kafka value), found from the enriched row's Kafka coordinates; :func:`cutouts`
decodes the latest alert's three stamps (gzipped FITS) into PNG images.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
import warnings
import zlib
from datetime import datetime
from typing import Any

import fastavro
import numpy as np
import pyarrow.dataset as ds
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from fink_core.archive_files import archive_dataset

#: Columns read from the enriched archive.
LC_COLUMNS = ("alert_id", "object_id", "survey", "obs_jd", "mag", "mag_err", "band",
              "hist_jd", "hist_mag", "hist_magerr", "hist_band", "hist_is_upper_limit",
              "classification", "classification_rule")
#: The three stamps of an alert, in page order.
STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def _enriched(archive_uri: str) -> ds.Dataset | None:
    return archive_dataset(f"{archive_uri.rstrip('/')}/enriched")


def archive_alerts(archive_uri: str, survey: str, object_id: str) -> list[dict[str, Any]]:
    """The object's rows of the enriched archive (:data:`LC_COLUMNS` and the catalogue
    matches present), oldest first; empty without an archive."""
    dataset = _enriched(archive_uri)
    if dataset is None:
        return []
    names = set(dataset.schema.names)
    wanted = [c for c in LC_COLUMNS if c in names]
    wanted += sorted(n for n in names if n.startswith("xm_"))
    wanted += [c for c in ("kafka_topic", "kafka_partition", "kafka_offset", "night")
               if c in names]
    if not {"object_id", "survey", "obs_jd"} <= names:
        return []
    table = dataset.to_table(columns=wanted, filter=(ds.field("object_id") == object_id)
                             & (ds.field("survey") == survey))
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: (r["obs_jd"], str(r["alert_id"])))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def light_curve(alerts: list[dict[str, Any]], records: list[dict[str, Any]],
                ) -> dict[str, Any]:
    """Points of the light curve, per band, with upper limits.

    Parameters
    ----------
    alerts : list of dict
        Rows of :func:`archive_alerts`.
    records : list of dict
        The object's counterpart records (used when ``alerts`` is empty).

    Returns
    -------
    dict
        ``source`` (``archive`` or ``records``), ``points`` (``jd``, ``mag``,
        ``mag_err``, ``band``, ``upper_limit``; time-ordered, one per time and band),
        ``bands``.
    """
    seen: dict[tuple[float, str, bool], dict[str, Any]] = {}
    for row in alerts:
        hist = zip(row.get("hist_jd") or [], row.get("hist_mag") or [],
                   row.get("hist_magerr") or [], row.get("hist_band") or [],
                   row.get("hist_is_upper_limit") or [], strict=False)
        for jd, mag, err, band, upper in hist:
            if _num(jd) is None or _num(mag) is None:
                continue
            key = (round(float(jd), 6), str(band), bool(upper))
            seen[key] = {"jd": float(jd), "mag": float(mag), "mag_err": _num(err),
                         "band": str(band), "upper_limit": bool(upper)}
    source = "archive"
    if not seen:
        source = "records"
        for rec in records:
            jd = _jd(rec.get("alert_time"))
            if jd is None or _num(rec.get("mag")) is None:
                continue
            key = (round(jd, 6), str(rec.get("band")), False)
            seen[key] = {"jd": jd, "mag": float(rec["mag"]), "mag_err": _num(rec.get("mag_err")),
                         "band": str(rec.get("band")), "upper_limit": False}
    points = sorted(seen.values(), key=lambda p: (p["jd"], p["band"]))
    return {"source": source if points else None, "points": points,
            "bands": sorted({p["band"] for p in points})}


def _jd(iso: Any) -> float | None:
    """UTC Julian date of an ISO 8601 time (``None`` if absent or malformed)."""
    if not isinstance(iso, str):
        return None
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp() / 86400.0 + 2440587.5


def summary(alerts: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Classification and catalogue matches of the latest alert (archive, else the
    latest record)."""
    if alerts:
        last = alerts[-1]
        matches = {}
        for key, value in last.items():
            if key.startswith("xm_") and key.endswith("_name") and value:
                cat = key[3:-5]
                matches[cat] = {"name": value, "type": last.get(f"xm_{cat}_type"),
                                "sep_arcsec": _num(last.get(f"xm_{cat}_sep_arcsec"))}
        return {"classification": last.get("classification"),
                "classification_rule": last.get("classification_rule"),
                "catalogue_matches": matches, "latest_alert_id": str(last["alert_id"]),
                "n_alerts_archived": len(alerts)}
    last_rec = records[-1] if records else {}
    return {"classification": last_rec.get("classification"),
            "classification_rule": last_rec.get("classification_rule"),
            "catalogue_matches": last_rec.get("catalogue_matches") or {},
            "latest_alert_id": last_rec.get("alert_id"), "n_alerts_archived": 0}


def cutouts(archive_uri: str, alert: dict[str, Any]) -> dict[str, bytes]:
    """The three stamps of an archived alert as PNG images (empty if not archived).

    Parameters
    ----------
    archive_uri : str
        The archive root.
    alert : dict
        A row of :func:`archive_alerts` (with its Kafka coordinates).
    """
    raw = archive_dataset(f"{archive_uri.rstrip('/')}/raw")
    need = ("kafka_topic", "kafka_partition", "kafka_offset")
    if raw is None or any(alert.get(k) is None for k in need):
        return {}
    names = set(raw.schema.names)
    if not {"topic", "partition", "offset", "value"} <= names:
        return {}
    table = raw.to_table(columns=["value"], filter=(ds.field("topic") == alert["kafka_topic"])
                         & (ds.field("partition") == int(alert["kafka_partition"]))
                         & (ds.field("offset") == int(alert["kafka_offset"])))
    if table.num_rows == 0:
        return {}
    return stamps_from_avro(table.column("value")[0].as_py())


def stamps_from_avro(payload: bytes) -> dict[str, bytes]:
    """PNG images of the stamps of one Avro alert packet (ZTF layout)."""
    records: list[Any] = list(fastavro.reader(io.BytesIO(payload)))
    out: dict[str, bytes] = {}
    if not records or not isinstance(records[0], dict):
        return out
    for name in STAMPS:
        stamp = records[0].get(name)
        data = stamp.get("stampData") if isinstance(stamp, dict) else None
        if data:
            out[name] = fits_to_png(data)
    return out


def fits_to_png(data: bytes) -> bytes:
    """A (gzipped) FITS image as an 8-bit greyscale PNG, scaled between its 1st and
    99.5th percentiles."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with warnings.catch_warnings():
        # ZTF's stamps have a SIMPLE card astropy calls non-standard; the data are fine.
        warnings.simplefilter("ignore", VerifyWarning)
        with fits.open(io.BytesIO(data)) as hdul:
            image = np.asarray(hdul[0].data, dtype=float)
    finite = image[np.isfinite(image)]
    lo, hi = (np.percentile(finite, [1.0, 99.5]) if finite.size else (0.0, 1.0))
    scaled = np.clip((np.nan_to_num(image, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    pixels = (scaled[::-1] * 255).astype(np.uint8)  # FITS rows run bottom-up
    return png_grey(pixels)


def png_grey(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a greyscale PNG."""
    height, width = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + pixels[i].tobytes() for i in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                            0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def as_json(value: Any) -> str:
    """Compact JSON for a page's data attribute."""
    return json.dumps(value, separators=(",", ":"), default=str)
