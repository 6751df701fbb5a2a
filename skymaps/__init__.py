"""Sky geometry of mm_broker: a notice's localisation in, a :class:`Region` out.

Pure functions, no database and no I/O beyond decoding the bytes they are given.

* :func:`region_for` - any localisation (circle, ellipse, box, sky map) to a region
  of order-29 nested HEALPix ranges, with tiles carrying credible level and density;
* :func:`credible_level_at`, :func:`density_at`, :func:`level_density_at`,
  :func:`searched_area_model` - the region's probability model (the one model of
  mm_broker: the coincidence engine uses it too);
* :mod:`skymaps.ranges` - UNIQ/ranges conversions, union, area, containment;
* :mod:`skymaps.conventions` - what each mission's error radius means, and
  :mod:`skymaps.radial` - the radial laws of circles (Fisher, the Fermi GBM mixture,
  the King profile of IceCube's two radii);
* :mod:`skymaps.moc_io` - regions as IVOA MOC FITS/JSON.
"""

from skymaps.circles import region_from_box, region_from_circle, region_from_ellipse
from skymaps.conventions import CONVENTIONS, ConventionError
from skymaps.lookup import (
    credible_level_at,
    density_at,
    in_tiles,
    level_density_at,
    radial_law,
    searched_area_model,
    separation_deg,
    with_sorted_tiles,
)
from skymaps.maps import DEFAULT_LIMITS, Limits, region_from_skymap
from skymaps.moc_io import (
    region_from_moc_fits,
    region_from_moc_json,
    region_from_ranges,
    region_to_moc,
    region_to_moc_fits,
    region_to_moc_json,
)
from skymaps.region import region_for

__all__ = [
    "CONVENTIONS",
    "DEFAULT_LIMITS",
    "ConventionError",
    "Limits",
    "credible_level_at",
    "density_at",
    "in_tiles",
    "level_density_at",
    "radial_law",
    "region_for",
    "region_from_box",
    "region_from_circle",
    "region_from_ellipse",
    "region_from_moc_fits",
    "region_from_moc_json",
    "region_from_ranges",
    "region_from_skymap",
    "region_to_moc",
    "region_to_moc_fits",
    "region_to_moc_json",
    "searched_area_model",
    "separation_deg",
    "with_sorted_tiles",
]
