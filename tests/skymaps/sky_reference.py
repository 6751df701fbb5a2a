"""Reference answers for the sky map tests, computed with ligo.skymap and mocpy
independently of :mod:`skymaps`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import astropy_healpix as ah
import numpy as np
from astropy.table import Table
from ligo.skymap import moc as lsm_moc
from ligo.skymap.io import read_sky_map
from mocpy import MOC

#: Cumulative probability kept when a flat map is handed to crossmatch/mocpy: the
#: ranking and cumulative sums of this prefix are those of the whole map, so the
#: 90 % contour and the levels of positions inside it are unchanged (crossmatch on
#: all 12.6 million pixels of GW190814 takes about 40 s).
REFERENCE_PREFIX = 0.999


@dataclass(frozen=True)
class Reference:
    """ligo.skymap's view of a map (UNIQ + PROBDENSITY only) and mocpy's 90 % MOC."""

    table: Table
    moc90: MOC


def reference(path: Path) -> Reference:
    """ligo.skymap table and mocpy 90 % MOC of a map file."""
    if ".multiorder." in path.name:
        table = read_sky_map(str(path), moc=True)
        # Only the sky columns: crossmatch's distance integrals are slow and unneeded.
        table = Table({"UNIQ": table["UNIQ"], "PROBDENSITY": table["PROBDENSITY"]})
        return Reference(table, MOC.from_multiordermap_fits_file(path, cumul_to=0.9))
    prob, _ = read_sky_map(str(path), nest=True)
    prob = np.asarray(prob, dtype=np.float64)
    npix = len(prob)
    order = int(ah.nside_to_level(ah.npix_to_nside(npix)))
    ranked = np.argsort(-prob, kind="stable")
    cumulative = np.cumsum(prob[ranked])
    keep = ranked[: int(np.searchsorted(cumulative, REFERENCE_PREFIX)) + 1]
    uniq = lsm_moc.nest2uniq(np.int8(order), keep.astype(np.int64))
    table = Table({"UNIQ": uniq, "PROBDENSITY": prob[keep] / (4 * np.pi / npix)})
    moc90 = MOC.from_valued_healpix_cells(uniq.astype(np.uint64), prob[keep], max_depth=order,
                                          cumul_to=0.9)
    return Reference(table, moc90)
