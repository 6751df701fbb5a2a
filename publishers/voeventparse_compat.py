"""voevent-parse, importable on Python 3.10 and later.

voevent-parse 1.0.3 still uses ``collections.Iterable`` (gone since Python 3.10):
the alias is restored before the package is imported. Every module of ours that
builds or reads VOEvents with voevent-parse imports it from here.
"""

from __future__ import annotations

import collections
import collections.abc

if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]

import voeventparse as vp  # noqa: E402

__all__ = ["vp"]
