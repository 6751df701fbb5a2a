"""Provenance of a pipeline run: what produced an enriched alert or a counterpart record.

One :class:`Provenance` is built per run, on the driver, once the catalogues are
loaded (:meth:`Provenance.from_settings`), and handed to the pipeline; it is small
and picklable, so it travels with the ``mapInPandas`` closure to the workers. It
holds

* ``mm_broker_version`` — always :data:`mm_broker.__version__` (the one place the
  version is written);
* ``config_hash`` — :meth:`mm_broker.core.config.Settings.hash` of the effective
  configuration;
* ``catalogues`` — per catalogue key, a version string derived from the catalogue's
  own provenance (:func:`catalogue_entry`, :func:`catalogue_version`);
* ``rules`` — the versions of the rule sets, as a mapping the caller assembles (this
  floor imports nothing above it): the quality cuts
  (:data:`fink_core.quality.RULES_VERSION`) and the first classification
  (:data:`fink_core.classify.RULES_VERSION`), which :func:`fink_core.annotate.rule_versions`
  gives, and the coincidence rules (:data:`coincidence.rules.RULES_VERSION`), which the
  application floor adds: :func:`mm_broker.app.provenance.rule_versions` is the one
  place the three are put together, for ``run``, ``replay``, ``alerts archive``, the
  demo and the benchmarks.

Every enriched alert row carries it in four string columns
(:data:`PROVENANCE_COLUMNS`, :meth:`Provenance.columns`); a counterpart record carries
``mm_broker_version``, ``config_hash``, ``catalogue_versions`` and ``rule_versions``
(:meth:`Provenance.record_fields`).

Examples
--------
>>> p = Provenance.build("0123456789abcdef", [], {"quality": "1.0.0", "coincidence": "1.0.0"})
>>> p.columns()["prov_config_hash"], p.columns()["prov_catalogues"]
('0123456789abcdef', '{}')
>>> p.columns()["prov_rules"]
'{"coincidence":"1.0.0","quality":"1.0.0"}'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from mm_broker import __version__
from mm_broker.core import config

#: Columns of the enriched archive holding the provenance (all strings, never null).
PROVENANCE_COLUMNS = ("prov_mm_broker_version", "prov_config_hash", "prov_catalogues",
                      "prov_rules")

#: Header keywords read as a catalogue's own version label, in order of preference.
_LABEL_KEYS = ("VERSION", "VERS", "DATA_REL", "RELEASE", "DATE")
#: Hex digits of each file's SHA-256 kept in a catalogue version.
_SHA_DIGITS = 12


class CatalogueLike(Protocol):
    """What a provenance reads of a loaded catalogue (:class:`fink_core.catalogues.Catalogue`
    has it): its key, its match radius and the provenance recorded at load (files and
    their SHA-256, header version keywords...)."""

    @property
    def key(self) -> str: ...

    @property
    def radius_arcsec(self) -> float: ...

    @property
    def provenance(self) -> Mapping[str, Any]: ...


def compact_json(values: Mapping[str, str]) -> str:
    """``values`` as compact JSON with sorted keys (the form stored in the archive)."""
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"))


def catalogue_entry(catalogue: CatalogueLike) -> dict[str, Any]:
    """Provenance entry of one loaded catalogue: its match radius and what was recorded
    at load (the form :func:`fink_core.catalogues.provenance` gives per key).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> catalogue_entry(SimpleNamespace(key="k", radius_arcsec=2.0, provenance={"n_rows": 3}))
    {'radius_arcsec': 2.0, 'n_rows': 3}
    """
    return {"radius_arcsec": catalogue.radius_arcsec, **catalogue.provenance}


def catalogue_versions(catalogues: Iterable[CatalogueLike]) -> dict[str, str]:
    """Catalogue key → version string (:func:`catalogue_version`) of loaded catalogues."""
    return {c.key: catalogue_version(catalogue_entry(c)) for c in catalogues}


def catalogue_version(entry: Mapping[str, Any]) -> str:
    """Version string of one catalogue from its provenance entry (:func:`catalogue_entry`,
    :func:`fink_core.catalogues.provenance`).

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


@dataclass(frozen=True)
class Provenance:
    """What produced a run's outputs (see the module docstring).

    Build it with :meth:`from_settings` (or :meth:`build` given a configuration hash);
    the version always comes from :data:`mm_broker.__version__`; the rule-set versions
    are handed in (:func:`mm_broker.app.provenance.rule_versions` for a run).

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
    def build(cls, config_hash: str, catalogues: Iterable[CatalogueLike],
              rules: Mapping[str, str]) -> Provenance:
        """Provenance of a run.

        Parameters
        ----------
        config_hash : str
            Hash of the effective configuration (:meth:`Settings.hash`).
        catalogues : iterable of CatalogueLike
            The loaded catalogues the run matches against.
        rules : mapping of str to str
            Rule set → version of every rule set the run applies.

        Returns
        -------
        Provenance

        Raises
        ------
        ValueError
            No configuration hash, no rule set, or a rule version that is not a
            non-empty string.
        """
        if not config_hash:
            raise ValueError("a provenance needs the hash of the effective configuration")
        if not rules:
            raise ValueError("a provenance needs the versions of the rule sets it applies")
        bad = {k: v for k, v in rules.items() if not (isinstance(v, str) and v)}
        if bad:
            raise ValueError(f"rule versions must be non-empty strings, not {bad}")
        return cls(mm_broker_version=__version__, config_hash=str(config_hash),
                   catalogues=tuple(sorted(catalogue_versions(catalogues).items())),
                   rules=tuple(sorted((str(k), v) for k, v in rules.items())))

    @classmethod
    def from_settings(cls, settings: config.Settings, catalogues: Iterable[CatalogueLike],
                      rules: Mapping[str, str]) -> Provenance:
        """Provenance of a run with ``settings`` (hashed), the loaded ``catalogues`` and
        the versions of the rule sets it applies (``rules``, see :meth:`build`)."""
        return cls.build(settings.hash(), catalogues, rules)

    @classmethod
    def default_config(cls, catalogues: Iterable[CatalogueLike],
                       rules: Mapping[str, str]) -> Provenance:
        """Provenance with the hash of the *shipped default* configuration (no site file,
        no ``MM_*`` overrides): for :func:`fink_core.pipeline.enrich` called without a
        provenance (tests, fuzzing), which names the rule sets it applies itself. A run
        always passes its own."""
        return cls.build(_default_config_hash(), catalogues, rules)

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
    return config.load(environ={}).hash()


__all__ = ["PROVENANCE_COLUMNS", "CatalogueLike", "Provenance", "catalogue_entry",
           "catalogue_version", "catalogue_versions", "compact_json"]
