"""One entry point: any localisation to its :class:`~mm_broker.core.models.Region`."""

from __future__ import annotations

import dataclasses

from mm_broker.core.errors import BadSkyMap
from mm_broker.core.models import Box, Circle, Ellipse, Localisation, Region, SkyMap
from skymaps.circles import region_from_box, region_from_circle, region_from_ellipse
from skymaps.maps import DEFAULT_LIMITS, Limits, region_from_skymap

__all__ = ["region_for"]


def region_for(
    localisation: Localisation,
    *,
    limits: Limits = DEFAULT_LIMITS,
    credible_level: float = 0.9,
    max_bytes: int | None = None,
    max_tiles: int | None = None,
) -> Region:
    """Turn a notice's localisation into a region at ``credible_level``.

    Dispatches on the type: :class:`Circle`, :class:`Ellipse` and :class:`Box` go to
    :mod:`skymaps.circles` (mission conventions of :mod:`skymaps.conventions`),
    :class:`SkyMap` to :mod:`skymaps.maps`. Maps are decoded from the bytes
    embedded in the notice; fetching a map from its URL is not done here.

    Parameters
    ----------
    localisation : Circle, Ellipse, Box or SkyMap
        As parsed from the notice.
    limits : Limits, optional
        Size limits for sky maps (:data:`skymaps.maps.DEFAULT_LIMITS`).
    credible_level : float, optional
        Probability content of the region (default 0.9).
    max_bytes, max_tiles : int, optional
        Override these two fields of ``limits`` (the ``[skymaps]`` settings).

    Returns
    -------
    Region

    Raises
    ------
    BadCoordinates
        Invalid position, radius, axes or containment.
    BadSkyMap
        A map that is not embedded, cannot be decoded, is too large or does not
        normalise.
    ConventionError
        Unknown or inapplicable error convention.
    TypeError
        Not a localisation.

    Examples
    --------
    >>> region = region_for(Circle(204.38, 33.04, 1.0, 0.6827, convention="fermi_gbm_final"))
    >>> region.kind, round(region.radius90_deg, 2)
    ('circle', 4.93)
    >>> region_for(SkyMap(data=None, url="https://example.org/m.fits"))
    Traceback (most recent call last):
    ...
    mm_broker.core.errors.BadSkyMap: bad_skymap: sky map not embedded (url: ...
    """
    if max_bytes is not None:
        limits = dataclasses.replace(limits, max_bytes=int(max_bytes))
    if max_tiles is not None:
        limits = dataclasses.replace(limits, max_tiles=int(max_tiles))
    if isinstance(localisation, Circle):
        return region_from_circle(localisation, credible_level=credible_level)
    if isinstance(localisation, Ellipse):
        return region_from_ellipse(localisation, credible_level=credible_level)
    if isinstance(localisation, Box):
        return region_from_box(localisation, credible_level=credible_level)
    if isinstance(localisation, SkyMap):
        if localisation.data is None:
            raise BadSkyMap(
                f"sky map not embedded (url: {localisation.url}); fetching it is not done "
                "here"
            )
        return region_from_skymap(localisation.data, limits=limits,
                                  credible_level=credible_level,
                                  convention=localisation.convention)
    raise TypeError(f"not a localisation: {type(localisation).__name__}")
