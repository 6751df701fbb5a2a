"""The corpus: the real files of the shared data that every fuzz case starts from.

Notices (``notices/`` and ``triggers/``: VOEvent XML, GCN JSON, ``igwn.gwalert`` JSON
with a base64 sky map) are all read; Avro alerts (``alerts/``) are read
:data:`AVRO_PER_FOLDER` per folder. The data directory is ``--data``, else
``MM_DATA_DIR``, else ``../shared/data`` next to the repository
(:func:`default_data_dir`).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from fink_core.decode import META_KEY, decode_avro
from fuzz.formats import JSONPath, read_header, record_leaves
from listeners.parsers.json_lvk import looks_like_gwalert
from listeners.parsers.json_registry import NOT_TRIGGERS, SCHEMA_PARSERS, TOPIC_PARSERS
from listeners.parsers.json_values import doc_schema_path
from mm_broker.core import config
from mm_broker.core.errors import CorruptAlert, NoticeError, UnknownSchema

#: The repository (its parent holds ``shared/data`` on the project's machines).
REPO = Path(__file__).resolve().parent.parent

#: Families of seeds, and the share of cases drawn from each (weights).
FAMILY_WEIGHTS: dict[str, int] = {
    "xml": 36,  # VOEvent 2.0 (and 1.1, namespace-less) notices
    "json": 24,  # GCN JSON notices without an embedded map
    "gwalert": 4,  # JSON notices with a base64 sky map (igwn.gwalert, ~1-2 MB each)
    "avro": 30,  # ZTF and LSST Avro containers
    "confluent": 6,  # the same alerts as Confluent-framed schemaless bodies
}
NOTICE_FAMILIES = frozenset({"xml", "json", "gwalert"})
ALERT_FAMILIES = frozenset({"avro", "confluent"})

#: Avro files read per folder of ``alerts/`` (evenly spaced in name order).
AVRO_PER_FOLDER = 8

#: A JSON string at least this long is treated as an embedded (base64) sky map.
MAP_STRING_MIN = 1000


def default_data_dir() -> Path:
    """The shared real data: ``MM_DATA_DIR``, else ``../shared/data`` next to the repo.

    Returns
    -------
    pathlib.Path
    """
    return Path(os.environ.get("MM_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


@dataclass(frozen=True)
class NoticeSeed:
    """A real notice file.

    Attributes
    ----------
    rel : str
        Path relative to the data directory.
    family : str
        ``"xml"``, ``"json"`` or ``"gwalert"``.
    data : bytes
        The file's bytes.
    topic : str or None
        The Kafka topic it would arrive on (JSON), if the registry tells one.
    doc : object
        The decoded JSON document (JSON families), never modified.
    """

    rel: str
    family: str
    data: bytes
    topic: str | None = None
    doc: Any = None


@dataclass(frozen=True)
class AvroSeed:
    """A real Avro alert container.

    Attributes
    ----------
    rel : str
        Path relative to the data directory.
    data : bytes
        The file's bytes.
    header_end : int
        Offset of the first data block (0 when the header cannot be read).
    parsed : object
        The writer schema, parsed by fastavro (``None`` if unreadable).
    record : dict or None
        The first record, to re-encode with mutated values.
    body : bytes or None
        The first record as a schemaless body (Confluent frames).
    survey : str or None
        ``"ztf"`` or ``"lsst"`` when the record is one we flatten.
    leaves : tuple
        Paths of the record's values that record mutations change.
    schema_bytes : bytes
        The writer schema as the file's header has it.
    """

    rel: str
    data: bytes
    header_end: int
    parsed: Any
    record: dict[str, Any] | None
    body: bytes | None
    survey: str | None
    leaves: tuple[JSONPath, ...] = ()
    schema_bytes: bytes = b""


@dataclass(frozen=True)
class Corpus:
    """The seeds by family, and the topics a notice may be paired with.

    Attributes
    ----------
    root : pathlib.Path
        The data directory.
    seeds : mapping of str to tuple
        ``family -> seeds`` (:class:`NoticeSeed` or :class:`AvroSeed`).
    topics : tuple of str
        Every topic the registries or the configuration name.
    xml_topics : tuple of str
        The GCN classic VOEvent topics of the configuration.
    """

    root: Path
    seeds: Mapping[str, tuple[Any, ...]]
    topics: tuple[str, ...]
    xml_topics: tuple[str, ...]

    def families(self) -> list[str]:
        """Families that have at least one seed, in :data:`FAMILY_WEIGHTS` order."""
        return [f for f in FAMILY_WEIGHTS if self.seeds.get(f)]

    def size(self) -> dict[str, int]:
        """Number of seeds per family."""
        return {f: len(self.seeds.get(f, ())) for f in FAMILY_WEIGHTS}


def _natural_topic(doc: Any) -> str | None:
    """The topic a JSON notice arrives on, as the registries tell it (or None)."""
    if not isinstance(doc, dict):
        return None
    if looks_like_gwalert(doc):
        return "igwn.gwalert"
    try:
        path = doc_schema_path(doc)
    except NoticeError:
        return None
    parser = SCHEMA_PARSERS.get(path) if path else None
    for topic in sorted(TOPIC_PARSERS):
        if parser is not None and TOPIC_PARSERS[topic] is parser:
            return topic
    return None


def _has_long_string(node: Any) -> bool:
    if isinstance(node, str):
        return len(node) >= MAP_STRING_MIN
    if isinstance(node, dict):
        return any(_has_long_string(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_long_string(v) for v in node)
    return False


def _notice_seeds(root: Path) -> list[NoticeSeed]:
    seeds = []
    for folder in ("notices", "triggers"):
        for path in sorted((root / folder).rglob("*")):
            name = path.name.lower()
            if not path.is_file() or name.endswith((".fits", ".fits.gz", ".gz", ".md")):
                continue
            data = path.read_bytes()
            rel = path.relative_to(root).as_posix()
            if name.endswith(".xml") or data.lstrip()[:1] == b"<":
                seeds.append(NoticeSeed(rel, "xml", data))
                continue
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            family = "gwalert" if _has_long_string(doc) else "json"
            seeds.append(NoticeSeed(rel, family, data, _natural_topic(doc), doc))
    return seeds


def _avro_seed(root: Path, path: Path) -> AvroSeed:
    data = path.read_bytes()
    rel = path.relative_to(root).as_posix()
    try:
        meta, _, header_end = read_header(data)
        reader = fastavro.reader(io.BytesIO(data))
        parsed = fastavro.parse_schema(reader.writer_schema)
        record = next(iter(reader))
    except (ValueError, StopIteration, EOFError, KeyError, TypeError):
        return AvroSeed(rel, data, 0, None, None, None, None)
    if not isinstance(record, dict):
        return AvroSeed(rel, data, header_end, parsed, None, None, None)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    try:
        survey: str | None = decode_avro(data)[0][META_KEY]["survey"]
    except (CorruptAlert, UnknownSchema):
        survey = None
    return AvroSeed(rel, data, header_end, parsed, record, buf.getvalue(), survey,
                    tuple(record_leaves(record)), meta.get("avro.schema", b""))


def _avro_seeds(root: Path, per_folder: int) -> list[AvroSeed]:
    by_folder: dict[Path, list[Path]] = {}
    for path in sorted((root / "alerts").rglob("*.avro")):
        by_folder.setdefault(path.parent, []).append(path)
    seeds: list[AvroSeed] = []
    for _, paths in sorted(by_folder.items()):
        step = max(1, len(paths) // per_folder)
        seeds.extend(_avro_seed(root, p) for p in paths[::step][:per_folder])
    return seeds


def load_corpus(root: str | os.PathLike[str] | None = None,
                avro_per_folder: int = AVRO_PER_FOLDER) -> Corpus:
    """Read the seed files of the shared data.

    Parameters
    ----------
    root : path-like, optional
        Data directory (default :func:`default_data_dir`).
    avro_per_folder : int, optional
        Avro files read per folder of ``alerts/`` (all notices are read).

    Returns
    -------
    Corpus

    Raises
    ------
    FileNotFoundError
        No notices or no alerts under ``root``.
    """
    base = Path(root).resolve() if root is not None else default_data_dir()
    if not (base / "notices").is_dir() or not (base / "alerts").is_dir():
        raise FileNotFoundError(f"no notices/ and alerts/ under {base}; set MM_DATA_DIR")
    notices = _notice_seeds(base)
    avro = _avro_seeds(base, avro_per_folder)
    seeds: dict[str, tuple[Any, ...]] = {
        family: tuple(s for s in notices if s.family == family)
        for family in ("xml", "json", "gwalert")
    }
    seeds["avro"] = tuple(avro)
    seeds["confluent"] = tuple(s for s in avro if s.body is not None)
    gcn_topics = list(config.load(environ={}).get("gcn.topics"))
    xml_topics = tuple(t for t in gcn_topics if t.startswith("gcn.classic.voevent."))
    topics = tuple(sorted(set(TOPIC_PARSERS) | set(NOT_TRIGGERS) | set(gcn_topics)))
    return Corpus(base, seeds, topics, xml_topics)
