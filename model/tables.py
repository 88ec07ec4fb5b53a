"""One results table in two shapes: long (``summary.csv``) and wide (a sweep's rows).

Long, as ``nrmsim run`` and ``nrmsim compare`` write ``summary.csv``: one row per value,
columns ``scenario, replicate, year, group_by, group, metric, value``. Wide, as a sweep
stores its runs (``model.sweeps.execute.load_results``): one row per run (and, for a
summary, per group), a column ``<metric>_<year>`` per metric and year (e.g.
``referrals_2024``) beside the identifying columns (``scenario``, ``replicate``,
``group_by``, ``group``, and a sweep's ``run_id``, ``point``, ``seed`` and factor columns).

:func:`to_wide` and :func:`to_long` turn one into the other; ``nrmsim run --table-shape
wide``, ``nrmsim compare --table-shape wide`` and ``load_results(out, shape="long")`` use
them. An empty cell of a wide table is a value the long table does not hold (a metric not
reported for that row's group) or holds as not defined (a rate without a denominator): the
wide shape cannot tell the two apart, and :func:`to_long` leaves every empty cell out. So
long -> wide -> long gives the long table without its rows of empty value, and wide -> long
-> wide gives the wide table back.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from model.common import SHAPES as SHAPES
from model.common import InputError

if TYPE_CHECKING:
    import pandas as pd

LONG_COLUMNS = ("scenario", "replicate", "year", "group_by", "group", "metric", "value")
GROUP_COLUMNS = ("group_by", "group")
VALUE_COLUMN = re.compile(r"(?P<metric>[A-Za-z][A-Za-z0-9_]*)_(?P<year>\d{4})")


def value_column(metric: str, year: int) -> str:
    """The wide table's column of ``metric`` in ``year``: ``<metric>_<year>``, as a sweep's
    outputs (``model.sweeps.spec.Output.column``)."""
    return f"{metric}_{int(year)}"


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """A long table in wide form: one row per combination of the columns other than
    ``year``, ``metric`` and ``value`` (rows in their first-seen order), a column
    ``<metric>_<year>`` per metric and year (in their first-seen order). ``group_by`` and
    ``group`` are left out when every row is the whole population (``all``), as in a
    sweep's rows.

    Raises:
        InputError: a column of the long shape is missing, or a value is given twice.
    """
    missing = [c for c in ("year", "metric", "value") if c not in long.columns]
    if missing:
        raise InputError(f"not a long results table: no column(s) {missing}")
    pairs = zip(long["metric"], long["year"], strict=True)
    frame = long.assign(_column=[value_column(m, y) for m, y in pairs])
    ids = [c for c in long.columns if c not in ("year", "metric", "value")]
    twice = frame.duplicated([*ids, "_column"])
    if twice.any():
        row = frame.loc[twice, [*ids, "_column"]].iloc[0].to_dict()
        raise InputError(f"a long results table holds one value per cell; given twice: {row}")
    columns = list(dict.fromkeys(frame["_column"]))
    cells = frame.set_index([*ids, "_column"])["value"].unstack("_column").reset_index()
    wide = frame[ids].drop_duplicates().merge(cells, on=ids, how="left", sort=False)
    if set(GROUP_COLUMNS) <= set(ids) and (long[list(GROUP_COLUMNS)] == "all").all(axis=None):
        ids = [c for c in ids if c not in GROUP_COLUMNS]
    return wide[[*ids, *columns]].reset_index(drop=True)


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """A wide table in long form: a row per non-empty ``<metric>_<year>`` cell, the columns
    of ``summary.csv`` first (``group_by`` and ``group`` are ``all`` when the wide table has
    none) and the wide table's other columns after them (a sweep's ``run_id``, ``point``,
    ``seed`` and factors); rows in the wide table's order, then its columns' order.

    Raises:
        InputError: the table has no ``<metric>_<year>`` column.
    """
    values = [c for c in wide.columns if VALUE_COLUMN.fullmatch(str(c))]
    if not values:
        raise InputError("not a wide results table: no <metric>_<year> column")
    ids = [c for c in wide.columns if c not in values]
    frame = wide.reset_index(drop=True)
    if not set(GROUP_COLUMNS) & set(ids):
        frame = frame.assign(group_by="all", group="all")
        ids = [*ids, *GROUP_COLUMNS]
    long = frame.reset_index(names="_row").melt(
        id_vars=["_row", *ids], value_vars=values, var_name="_column", value_name="value"
    )
    long = long[long["value"].notna()]
    order = {c: i for i, c in enumerate(values)}
    long = long.assign(_order=long["_column"].map(order))
    long = long.sort_values(["_row", "_order"], kind="stable")
    parts = long["_column"].str.extract(VALUE_COLUMN)
    long = long.assign(metric=parts["metric"], year=parts["year"].astype("int64"))
    first = [c for c in LONG_COLUMNS if c in long.columns]
    return long[[*first, *(c for c in ids if c not in first)]].reset_index(drop=True)
