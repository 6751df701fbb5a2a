"""Provenance of a pipeline run: what produced an enriched alert or a counterpart record.

One :class:`Provenance` is built per run, on the driver, once the catalogues are
loaded (:meth:`Provenance.from_settings`), and handed to the pipeline; it is small
and picklable, so it travels with the ``mapInPandas`` closure to the workers. It
holds

* ``mm_broker_version`` — always :data:`mm_broker.__version__` (the one place the
  version is written);
* ``config_hash`` — :meth:`mm_broker.core.config.Settings.hash` of the effective
  configuration;
* ``catalogues`` — per catalogue key, a version string derived from
  :func:`fink_core.catalogues.provenance` (see :func:`catalogue_version`);
* ``rules`` — the versions of the rule sets: the quality cuts
  (:data:`fink_core.quality.RULES_VERSION`), the first classification
  (:data:`fink_core.classify.RULES_VERSION`) and the coincidence rules
  (:data:`coincidence.rules.RULES_VERSION`).

Every enriched alert row carries it in four string columns
(:data:`PROVENANCE_COLUMNS`, :meth:`Provenance.columns`); a counterpart record carries
``mm_broker_version``, ``config_hash``, ``catalogue_versions`` and ``rule_versions``
(:meth:`Provenance.record_fields`).

Examples
--------
>>> p = Provenance.build("0123456789abcdef", [])
>>> p.columns()["prov_config_hash"], p.columns()["prov_catalogues"]
('0123456789abcdef', '{}')
>>> sorted(p.rule_versions())
['classification', 'coincidence', 'quality']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from fink_core.catalogues import Catalogue, provenance

if TYPE_CHECKING:
    from mm_broker.core.config import Settings

#: Columns of the enriched archive holding the provenance (all strings, never null).
PROVENANCE_COLUMNS = ("prov_mm_broker_version", "prov_config_hash", "prov_catalogues",
                      "prov_rules")

#: Header keywords read as a catalogue's own version label, in order of preference.
_LABEL_KEYS = ("VERSION", "VERS", "DATA_REL", "RELEASE", "DATE")
#: Hex digits of each file's SHA-256 kept in a catalogue version.
_SHA_DIGITS = 12


def compact_json(values: Mapping[str, str]) -> str:
    """``values`` as compact JSON with sorted keys (the form stored in the archive)."""
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"))


def catalogue_version(entry: Mapping[str, Any]) -> str:
    """Version string of one catalogue from its :func:`fink_core.catalogues.provenance`
    entry.

    The string is ``[<label> ]sha256:<h1>[+<h2>…] r=<radius>arcsec``: the header's
    own version label when the file has one (``VERSION``, ``VERS``, ``DATA_REL``,
    ``RELEASE`` or ``DATE``; distinct values joined by ``+``), the first 12 hex digits
    of the SHA-256 of each file in load order (``sha256sum`` of the file gives them),
    and the match radius. Any change of the files or of the radius changes it.

    Examples
    --------
    >>> catalogue_version({"radius_arcsec": 1.5,
    ...                    "files": [{"name": "a.fits", "sha256": "01ea965408db1103d0"},
    ...                              {"name": "b.fits", "sha256": "0ba0a50d21f51ceef3"}],
    ...                    "header_version": {"a.fits": {"VERSION": "v28", "DATE": "x"},
    ...                                       "b.fits": {"VERSION": "v28"}}})
    'v28 sha256:01ea965408db+0ba0a50d21f5 r=1.5arcsec'
    """
    labels: list[str] = []
    for versions in dict(entry.get("header_version") or {}).values():
        label = next((str(versions[k]) for k in _LABEL_KEYS if k in versions), None)
        if label is not None and label not in labels:
            labels.append(label)
    shas = "+".join(str(f["sha256"])[:_SHA_DIGITS] for f in entry.get("files", []))
    head = f"{'+'.join(labels)} " if labels else ""
    return f"{head}sha256:{shas} r={float(entry['radius_arcsec']):g}arcsec"


def rule_versions() -> dict[str, str]:
    """Versions of the rule sets of this code: quality cuts, classification, coincidence."""
    from coincidence.rules import RULES_VERSION as coincidence_version
    from fink_core.classify import RULES_VERSION as classification_version
    from fink_core.quality import RULES_VERSION as quality_version

    return {"quality": quality_version, "classification": classification_version,
            "coincidence": coincidence_version}


@dataclass(frozen=True)
class Provenance:
    """What produced a run's outputs (see the module docstring).

    Build it with :meth:`from_settings` (or :meth:`build` given a configuration hash);
    the version always comes from :data:`mm_broker.__version__`.

    Attributes
    ----------
    mm_broker_version : str
        MAJOR.MINOR.PATCH of mm_broker.
    config_hash : str
        Short hash of the effective configuration.
    catalogues : tuple of (str, str)
        ``(key, version)`` of each catalogue used, sorted by key.
    rules : tuple of (str, str)
        ``(rule set, version)``, sorted by rule set.
    """

    mm_broker_version: str
    config_hash: str
    catalogues: tuple[tuple[str, str], ...]
    rules: tuple[tuple[str, str], ...]

    @classmethod
    def build(cls, config_hash: str, catalogues: Iterable[Catalogue]) -> Provenance:
        """Provenance of a run with configuration hash ``config_hash`` and ``catalogues``."""
        from mm_broker import __version__

        if not config_hash:
            raise ValueError("a provenance needs the hash of the effective configuration")
        versions = {k: catalogue_version(v) for k, v in provenance(catalogues).items()}
        return cls(mm_broker_version=__version__, config_hash=str(config_hash),
                   catalogues=tuple(sorted(versions.items())),
                   rules=tuple(sorted(rule_versions().items())))

    @classmethod
    def from_settings(cls, settings: Settings, catalogues: Iterable[Catalogue]) -> Provenance:
        """Provenance of a run with ``settings`` (hashed) and the loaded ``catalogues``."""
        return cls.build(settings.hash(), catalogues)

    @classmethod
    def default_config(cls, catalogues: Iterable[Catalogue]) -> Provenance:
        """Provenance with the hash of the *shipped default* configuration (no site file,
        no ``MM_*`` overrides): for :func:`fink_core.pipeline.enrich` called without a
        provenance (tests, fuzzing). A run always passes its own."""
        return cls.build(_default_config_hash(), catalogues)

    def catalogue_versions(self) -> dict[str, str]:
        """Catalogue key → version string."""
        return dict(self.catalogues)

    def rule_versions(self) -> dict[str, str]:
        """Rule set → version."""
        return dict(self.rules)

    def columns(self) -> dict[str, str]:
        """Values of the :data:`PROVENANCE_COLUMNS` of an enriched row."""
        return {"prov_mm_broker_version": self.mm_broker_version,
                "prov_config_hash": self.config_hash,
                "prov_catalogues": compact_json(self.catalogue_versions()),
                "prov_rules": compact_json(self.rule_versions())}

    def record_fields(self) -> dict[str, Any]:
        """Provenance fields of a counterpart record (``counterpart-v2.avsc``)."""
        return {"mm_broker_version": self.mm_broker_version, "config_hash": self.config_hash,
                "catalogue_versions": self.catalogue_versions(),
                "rule_versions": self.rule_versions()}


@cache
def _default_config_hash() -> str:
    from mm_broker.core import config

    return config.load(environ={}).hash()


__all__ = ["PROVENANCE_COLUMNS", "Provenance", "catalogue_version", "compact_json",
           "rule_versions"]
