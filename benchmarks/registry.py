"""The benchmarks of ``mm-broker bench``: one explicit table, name → run function.

Each entry gives the run function (called as ``run(settings, **params)``), its
parameters with their defaults and a line of help each, and a summary. The table's
defaults are the ones a run gets (the functions' own defaults are the same; a test
checks it). Parameters come from the command line as ``--param KEY=VALUE`` and take
the type of their default (``int`` or ``float``). ``make bench`` runs ``notices``,
``pipeline``, ``join``, ``latency``, ``retro`` and ``publish``; ``benchmarks/README.md``
describes the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.join import bench_join
from benchmarks.latency import bench_latency
from benchmarks.notices import bench_notices
from benchmarks.pipeline import bench_pipeline
from benchmarks.portal import bench_portal
from benchmarks.publish import bench_publish
from benchmarks.retro import bench_retro
from benchmarks.soak import SOAK_GOAL_RATE_PER_MIN, bench_soak
from mm_broker.core.config import Settings


@dataclass(frozen=True)
class Param:
    """A benchmark parameter.

    Parameters
    ----------
    default : int or float
        Value when not given; its type is the parameter's type.
    help : str
        What it is, with its unit.
    """

    default: int | float
    help: str


@dataclass(frozen=True)
class Benchmark:
    """One entry of the table.

    Parameters
    ----------
    name : str
        ``mm-broker bench NAME``.
    run : callable
        ``run(settings, **params) -> dict`` of figures (JSON-serialisable).
    summary : str
        One line: what is measured.
    params : mapping of str to Param
        The parameters ``--param KEY=VALUE`` may set.
    """

    name: str
    run: Callable[..., dict[str, Any]]
    summary: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def parse(self, items: Iterable[str]) -> dict[str, int | float]:
        """Every parameter's value: the defaults, overridden by ``KEY=VALUE`` items.

        Parameters
        ----------
        items : iterable of str
            ``KEY=VALUE`` (``-`` in a key is read as ``_``).

        Returns
        -------
        dict
            Parameter → value, of the type of its default.

        Raises
        ------
        ValueError
            For an item without ``=``, an unknown key or a value of the wrong type.
        """
        values = {key: p.default for key, p in self.params.items()}
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                raise ValueError(f"parameter {item!r} is not KEY=VALUE")
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise ValueError(f"benchmark {self.name!r} has no parameter {key!r} "
                                 f"(parameters: {known})")
            values[key] = _convert(key, text.strip(), type(self.params[key].default))
        return values


def _convert(key: str, text: str, kind: type) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"parameter {key}={text!r} is not a number") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"parameter {key}={text!r} must be an integer")
        return int(number)
    return number


#: Name → benchmark. Names follow ARCHITECTURE.md (``mm-broker bench NAME --json``).
BENCHMARKS: dict[str, Benchmark] = {
    "notices": Benchmark(
        "notices", bench_notices,
        "notice received -> region stored and active (Swift BAT circle, LVK map notice)",
        {"repeat": Param(30, "timed ingestions per notice")}),
    "pipeline": Benchmark(
        "pipeline", bench_pipeline,
        "alerts/s through decode + flags + annotation in Spark",
        {"n_alerts": Param(40_000, "alerts processed (real alerts, cycled)"),
         "fink": Param(1, "1: with Fink's science modules (fink-science), 0: without")}),
    "join": Benchmark(
        "join", bench_join,
        "in-memory join against active regions vs the bare numpy limit, one core",
        {"n_alerts": Param(2_000_000, "alerts per run"),
         "n_regions": Param(100, "active regions"),
         "n_gw": Param(5, "GW-like regions among them"),
         "seed": Param(0, "seed of the regions and alerts"),
         "repeats": Param(3, "runs per figure (the best is kept)"),
         "gw_depth": Param(14, "HEALPix order of the GW-like regions")}),
    "latency": Benchmark(
        "latency", bench_latency,
        "alert in -> counterpart out through mm-broker run",
        {"rate": Param(1000.0, "alerts per second"),
         "seconds": Param(30.0, "seconds of sending")}),
    "retro": Benchmark(
        "retro", bench_retro,
        "late region (S230518h map) retro-matched against the alert archive",
        {"n_alerts": Param(10_000_000, "archived alerts (20 nights)")}),
    "publish": Benchmark(
        "publish", bench_publish,
        "records/s to Kafka and VOEvents/s through Comet",
        {"n_records": Param(20_000, "counterpart records sent to Kafka"),
         "n_voevents": Param(200, "VOEvents submitted to Comet")}),
    "soak": Benchmark(
        "soak", bench_soak,
        "sustained load through mm-broker run: throughput, lag, latency, RSS, CPU",
        {"rate_per_min": Param(float(SOAK_GOAL_RATE_PER_MIN), "alerts per minute"),
         "minutes": Param(10.0, "minutes of sending"),
         "regions": Param(100, "stored Einstein Probe circles"),
         "match_fraction": Param(0.02, "share of alerts placed inside a region"),
         "cutouts": Param(0, "1: keep the three cutout stamps of every alert"),
         "warmup_s": Param(60.0, "seconds of warm-up left out of the figures"),
         "sample_s": Param(10.0, "seconds between samples of lag and memory"),
         "trigger_s": Param(2.0, "Spark trigger interval of the service, s"),
         "voevents": Param(1, "1: a Comet subscriber counts the VOEvents"),
         "min_free_gb": Param(8.0, "stop sending below this free disk, GB"),
         "drain_timeout_s": Param(300.0, "seconds to drain the backlog after sending "
                                         "(at least the duration)"),
         "stall_timeout_s": Param(300.0, "stop when no micro-batch is committed for "
                                         "that long while alerts wait, s"),
         "max_offsets": Param(0, "alerts per micro-batch at most (0: the configuration's "
                                 "alerts.max_offsets_per_trigger)"),
         "seed": Param(1, "seed of the sky and the positions")}),
    "portal": Benchmark(
        "portal", bench_portal,
        "portal API: events list, an event's candidates, cone search, on a large store",
        {"n_events": Param(10_000, "events stored (one region version each)"),
         "n_candidates": Param(1_000_000, "counterpart records stored, spread evenly"),
         "requests": Param(200, "timed requests of each kind"),
         "seed": Param(3, "seed of the sky, the times and the requests")}),
}


def get(name: str) -> Benchmark:
    """The benchmark called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`BENCHMARKS`.

    Returns
    -------
    Benchmark
        Its entry.

    Raises
    ------
    KeyError
        With the known names, if there is none of that name.
    """
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: "
                       f"{', '.join(BENCHMARKS)}") from None


def run(name: str, settings: Settings, items: Iterable[str] = ()) -> dict[str, Any]:
    """Run benchmark ``name`` with ``KEY=VALUE`` parameters; return its figures.

    Parameters
    ----------
    name : str
        A key of :data:`BENCHMARKS`.
    settings : Settings
        Configuration of the local services.
    items : iterable of str, optional
        ``KEY=VALUE`` parameters (the others take their defaults).

    Returns
    -------
    dict
        The benchmark's figures.

    Raises
    ------
    KeyError
        For an unknown benchmark.
    ValueError
        For a bad parameter.
    """
    bench = get(name)
    return bench.run(settings, **bench.parse(items))
