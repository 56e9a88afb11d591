"""How cost grows: runs that differ only in the dataset's size, as series, with fitted exponents.

A *family* is every group (bench/report/runs.py) sharing machine, device and
spec apart from the dataset; each group of a family is one *point*, placed by
its record's `train_rows + test_rows` (ratings), `num_users` and `num_movies`.
Two kinds of series come out of a family:

- against ratings: points whose table sizes are the same share of the ratings
  (users / ratings and movies / ratings equal to 2 significant digits), at two
  or more numbers of ratings;
- against table rows: points with the same ratings and movies, at two or more
  numbers of users.

Only points whose records carry those figures count (records from before they
existed form no series), so a report without such runs has no section at all.
Groups in a series are shown here only: capped runs of a few epochs measure
cost, not accuracy, so they get no accuracy tables or verdicts.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field

from bench.report.runs import GroupKey, Run
from bench.report.tables import Column, Row, Table, num
from bench.stats import spread

AGAINST_RATINGS = "ratings"
AGAINST_TABLE = "table rows"  # user table rows (users)
# The figures a series is drawn from (per run; the point's value is the median over runs).
STEP = "train_step_ms"
PEAK = "peak_rss_train_mb"  # training's peak (the whole run's adds the numpy check)
NEED = "need_mb"
COMMANDS_FILE = "commands.txt"  # written beside the records by bench/studies/scaling.py


@dataclass(frozen=True)
class Point:
    """One dataset of a family: its size and its runs by implementation."""

    key: GroupKey
    ratings: int
    users: int
    movies: int
    runs: dict[str, list[Run]]

    def x(self, against: str) -> int:
        return self.ratings if against == AGAINST_RATINGS else self.users

    def median(self, impl: str, figure: str) -> float:
        """Median of `figure` over the impl's runs here, nan when none has it."""
        values = [r.figure(figure) for r in self.runs.get(impl, [])]
        values = [v for v in values if not math.isnan(v)]
        return spread(values).median if values else math.nan


@dataclass
class Series:
    """Points of one family along one axis, sorted by x."""

    against: str
    points: list[Point]
    impls: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        """Stable file-name stem (the family's key and the axis)."""
        digest = hashlib.sha256(repr((self.against, [p.key for p in self.points])).encode())
        axis = "ratings" if self.against == AGAINST_RATINGS else "tables"
        return f"scaling-{axis}-{digest.hexdigest()[:8]}"

    def values(self, impl: str, figure: str) -> tuple[list[int], list[float]]:
        """(x, median figure) of the points where the impl has it."""
        pairs = [(p.x(self.against), p.median(impl, figure)) for p in self.points]
        kept = [(x, y) for x, y in pairs if not math.isnan(y) and y > 0]
        return [x for x, _ in kept], [y for _, y in kept]

    def exponent(self, impl: str, figure: str) -> float:
        """Least-squares slope of log y on log x (1.0: linear); nan under two x values.

        Closed form with math.log and math.fsum, not np.polyfit: LAPACK and numpy's
        SIMD log differ in the last bits between CPUs, and a rerun of the report on
        another machine must rewrite the same bytes.
        """
        xs, ys = self.values(impl, figure)
        if len(set(xs)) < 2:
            return math.nan
        lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
        mx, my = math.fsum(lx) / len(lx), math.fsum(ly) / len(ly)
        return math.fsum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / math.fsum(
            (a - mx) ** 2 for a in lx)


def _family(key: GroupKey) -> tuple[object, ...]:
    spec = tuple((k, v) for k, v in key.spec if k != "dataset")
    return key.machine, key.gpu, key.device, spec


def _point(key: GroupKey, runs: list[Run]) -> Point | None:
    """The group as a point, or None when its runs do not say the dataset's size."""
    def first(name: str) -> float:
        return next((r.figure(name) for r in runs if not math.isnan(r.figure(name))), math.nan)

    sizes = [first("train_rows") + first("test_rows"), first("num_users"), first("num_movies")]
    if any(math.isnan(v) or v < 1 for v in sizes):
        return None
    by_impl: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_impl[r.impl].append(r)
    return Point(key, int(sizes[0]), int(sizes[1]), int(sizes[2]), dict(sorted(by_impl.items())))


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2g}"


def _series(points: list[Point]) -> list[Series]:
    out = []
    by_shape: dict[tuple[str, str], list[Point]] = defaultdict(list)
    by_rows: dict[tuple[int, int], list[Point]] = defaultdict(list)
    for p in points:
        by_shape[(_share(p.users, p.ratings), _share(p.movies, p.ratings))].append(p)
        by_rows[(p.ratings, p.movies)].append(p)
    for against, buckets in ((AGAINST_RATINGS, by_shape), (AGAINST_TABLE, by_rows)):
        for _, members in sorted(buckets.items()):
            members = sorted(members, key=lambda p: (p.x(against), p.key.sort_key()))
            if len({p.x(against) for p in members}) >= 2:
                impls = sorted({i for p in members for i in p.runs})
                out.append(Series(against, members, impls))
    return out


def find_series(groups: dict[GroupKey, list[Run]]) -> list[Series]:
    """Every series among the groups (see the module docstring), in a stable order."""
    families: dict[tuple[object, ...], list[Point]] = defaultdict(list)
    for key, runs in sorted(groups.items(), key=lambda kv: kv[0].sort_key()):
        point = _point(key, runs)
        if point is not None:
            families[_family(key)].append(point)
    return [s for _, pts in sorted(families.items(), key=lambda kv: repr(kv[0]))
            for s in _series(pts)]


def exponent_table(series: list[Series]) -> Table:
    """Per series and implementation: fitted exponents and peak memory over need."""
    rows: list[Row] = []
    for s in series:
        for impl in s.impls:
            last = s.points[-1]
            peak, need = last.median(impl, PEAK), last.median(impl, NEED)
            rows.append({"series": s.slug, "against": s.against, "impl": impl,
                         "points": len(s.values(impl, STEP)[0]),
                         "step_exponent": s.exponent(impl, STEP),
                         "memory_exponent": s.exponent(impl, PEAK),
                         "largest_x": last.x(s.against),
                         "peak_over_need_largest": peak / need if need > 0 else math.nan})
    return Table("scaling_exponents", [
        Column("against", lambda r: f"{r['against']} ([{r['series']}](#{r['series']}))"),
        Column("impl", lambda r: r["impl"]),
        Column("points", lambda r: str(r["points"])),
        Column("step time exponent", lambda r: _exp(r["step_exponent"])),
        Column("peak memory exponent", lambda r: _exp(r["memory_exponent"])),
        Column("peak / needed at the largest", lambda r: num(r["peak_over_need_largest"], 2)),
    ], rows)


def _exp(x: float) -> str:
    """An exponent with two decimals; a rounding -0.00 shown as 0.00."""
    text = num(x, 2)
    return "0.00" if text == "-0.00" else text


def _baseline_mb(p: Point, impl: str) -> float:
    """What importing the framework added to the worker's memory (median over runs)."""
    return p.median(impl, "rss_after_import_mb") - p.median(impl, "rss_after_load_mb")


def values_table(s: Series) -> Table:
    """Every point of one series: size, step time, peak memory next to what is needed."""
    rows: list[Row] = []
    for impl in s.impls:
        for p in s.points:
            if impl not in p.runs:
                continue
            peak, need = p.median(impl, PEAK), p.median(impl, NEED)
            rows.append({"series": s.slug, "impl": impl, "ratings": p.ratings, "users": p.users,
                         "movies": p.movies, "runs": len(p.runs[impl]),
                         "train_step_ms": p.median(impl, STEP), "peak_rss_train_mb": peak,
                         "peak_rss_mb": p.median(impl, "peak_rss_mb"),
                         "need_mb": need, "peak_over_need": peak / need if need > 0 else math.nan,
                         "framework_import_mb": _baseline_mb(p, impl),
                         "dataset_hash": p.key.dataset_hash})
    return Table("scaling", [
        Column("impl", lambda r: r["impl"]), Column("ratings", lambda r: f"{r['ratings']:,}"),
        Column("users", lambda r: f"{r['users']:,}"),
        Column("movies", lambda r: f"{r['movies']:,}"),
        Column("runs", lambda r: str(r["runs"])),
        Column("train_step_ms", lambda r: num(r["train_step_ms"], 2)),
        Column("peak RSS MB, training", lambda r: num(r["peak_rss_train_mb"], 0)),
        Column("peak RSS MB, whole run", lambda r: num(r["peak_rss_mb"], 0)),
        Column("needed MB (params + Adagrad + data)", lambda r: num(r["need_mb"], 0)),
        Column("peak / needed", lambda r: num(r["peak_over_need"], 2)),
        Column("framework import MB", lambda r: num(r["framework_import_mb"], 0)),
    ], rows)


def need_line(s: Series) -> tuple[list[int], list[float]]:
    """(x, needed MB) per point: the same for every implementation (spec and dataset only)."""
    pairs = [(p.x(s.against), max((p.median(i, NEED) for i in p.runs), default=math.nan))
             for p in s.points]
    kept = [(x, y) for x, y in pairs if y > 0]  # nan fails too
    return [x for x, _ in kept], [y for _, y in kept]


def axis_label(s: Series) -> str:
    """The x axis of a series, with what is held fixed."""
    p = s.points[0]
    if s.against == AGAINST_RATINGS:
        return (f"ratings (users = {p.users / p.ratings:.2g} x ratings, "
                f"movies = {p.movies / p.ratings:.2g} x ratings)")
    return f"user table rows ({p.ratings:,} ratings, {p.movies:,} movies)"
