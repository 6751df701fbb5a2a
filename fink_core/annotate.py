"""The annotation stage: quality flags, context, features, cross-matches, class.

``annotate`` is one DataFrame -> DataFrame step, pure (no I/O): the catalogues are
loaded beforehand (driver side, then broadcast) and handed in. It only adds columns,
with the stable names listed in :data:`ADDED_COLUMNS` (for the default catalogues)
or returned by :func:`added_columns`; it never alters a column it was given.
:func:`output_schema` gives the Arrow schema of its output, for the ``mapInPandas``
declaration and the Parquet archive.

The chain, in order::

    quality_flags -> context -> features -> crossmatch_all -> fink_modules -> classify

``fink_modules`` (:mod:`fink_core.fink_science`) runs Fink's own science modules
(fink-science) and adds their ``fink_*`` columns, which the classification reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa

from fink_core import model
from fink_core.catalogues import DEFAULT_CATALOGUES, Catalogue
from fink_core.classify import CLASSIFY_COLUMNS, classify
from fink_core.classify import RULES_VERSION as CLASSIFICATION_RULES_VERSION
from fink_core.context import CONTEXT_COLUMNS, context
from fink_core.crossmatch import crossmatch_all, crossmatch_columns
from fink_core.features import FEATURE_COLUMNS, features
from fink_core.fink_science import FINK_COLUMNS, fink_modules, fink_nulls
from fink_core.fink_science import versions as fink_versions
from fink_core.quality import QUALITY_COLUMNS, quality_flags
from fink_core.quality import RULES_VERSION as QUALITY_RULES_VERSION

#: Keys of the default catalogues, in order.
DEFAULT_CATALOGUE_KEYS: tuple[str, ...] = tuple(spec.key for spec in DEFAULT_CATALOGUES)


def rule_versions() -> dict[str, str]:
    """Versions of the rule sets this stage applies: the quality cuts
    (:data:`fink_core.quality.RULES_VERSION`), the first classification
    (:data:`fink_core.classify.RULES_VERSION`), and Fink's science modules: the
    fink-science and fink-utils releases and the version of each module's model
    (:func:`fink_core.fink_science.versions`, keys ``fink_*``).

    They go into every enriched row's provenance (``prov_rules``); a run adds the
    coincidence rules' version (:func:`mm_broker.app.provenance.rule_versions`).

    Examples
    --------
    >>> sorted(k for k in rule_versions() if not k.startswith("fink_"))
    ['classification', 'quality']
    >>> rule_versions()["fink_science"]
    '7.4.0'
    """
    return {"quality": QUALITY_RULES_VERSION, "classification": CLASSIFICATION_RULES_VERSION,
            **fink_versions()}


def added_columns(catalogue_keys: Iterable[str] = DEFAULT_CATALOGUE_KEYS) -> list[str]:
    """Names of the columns :func:`annotate` adds, in order.

    Parameters
    ----------
    catalogue_keys : iterable of str
        Keys of the catalogues that will be handed to :func:`annotate`.

    Returns
    -------
    list of str
    """
    return [
        *QUALITY_COLUMNS,
        *CONTEXT_COLUMNS,
        *FEATURE_COLUMNS,
        *crossmatch_columns(catalogue_keys),
        *FINK_COLUMNS,
        *CLASSIFY_COLUMNS,
    ]


#: Columns added with the default catalogues.
ADDED_COLUMNS: tuple[str, ...] = tuple(added_columns())

_STRING_COLUMNS = {"ctx_sso_name", "classification", "classification_rule"}
_BOOL_COLUMNS = {
    *QUALITY_COLUMNS,
    "ctx_is_sso_candidate",
    "ctx_is_star",
    "ctx_near_galaxy",
    "ctx_is_new",
    "ft_mag_rate_from_upper",
}


_FINK_TYPES = {c.name: c.type for c in model.FINK_SCIENCE_COLUMNS}


def _added_type(name: str) -> pa.DataType:
    if name in _FINK_TYPES:
        return _FINK_TYPES[name]
    if name in _STRING_COLUMNS or name.endswith(("_name", "_type")):
        return pa.string()
    if name in _BOOL_COLUMNS:
        return pa.bool_()
    return pa.float64()


def output_schema(catalogue_keys: Iterable[str] = DEFAULT_CATALOGUE_KEYS) -> pa.Schema:
    """Arrow schema of :func:`annotate`'s output: the model, then the added columns.

    Parameters
    ----------
    catalogue_keys : iterable of str
        Keys of the catalogues handed to :func:`annotate`.

    Returns
    -------
    pyarrow.Schema
    """
    base = model.arrow_schema()
    extra = [pa.field(n, _added_type(n)) for n in added_columns(catalogue_keys)]
    return pa.schema(list(base) + extra)


def annotate(
    df: pd.DataFrame, catalogues: Sequence[Catalogue] | Mapping[str, Catalogue] = (),
    *, fink: bool = True
) -> pd.DataFrame:
    """Add quality flags, context, features, cross-matches, Fink's science modules and a
    class to alerts.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model` (output of ``flatten``).
    catalogues : sequence or mapping of Catalogue
        Loaded catalogues (:func:`fink_core.catalogues.load_default_catalogues`).
    fink : bool, optional
        Run Fink's science modules (default). False leaves the ``fink_*`` columns
        null (``mm-broker bench pipeline --param fink=0``: what the modules cost); the
        classification then reads our own flag and rate.

    Returns
    -------
    pandas.DataFrame
        ``df``'s columns unchanged, then :func:`added_columns` of the catalogues'
        keys; same index and row order.

    Raises
    ------
    ValueError
        If ``df`` already has one of the columns to add.
    """
    cats = list(catalogues.values()) if isinstance(catalogues, Mapping) else list(catalogues)
    names = added_columns(c.key for c in cats)
    clash = sorted(set(names) & set(df.columns))
    if clash:
        raise ValueError(f"annotate would overwrite existing columns: {clash}")
    parts = [quality_flags(df), context(df), features(df), crossmatch_all(df, cats),
             fink_modules(df) if fink else fink_nulls(df)]
    out = pd.concat([df, *parts], axis=1)
    out = pd.concat([out, classify(out)], axis=1)
    return out[[*df.columns, *names]]
