"""Batches straight from columns: numpy arrays in, a ``KernelBatch`` and result columns out.

No Bill objects: the three input tables (bills, items, persons with one row per tag) are plain
numpy arrays, checked and turned into the kernel's arrays with vectorized numpy (sorting by
household and date, CSR item offsets, person-year and household-year slots by ``np.unique``,
tag masks valid on the admission date, age in full years on the admission date, the table in
force by region and discharge date). Bad rows are not dropped silently: each one comes back as
a ``Reject`` (row, table or file, field, value, rule), and the bills they touch are left out of
the batch (a rejected bill changes no account and writes nothing). The caller decides whether
any reject fails the run.

Conventions of the input columns
- ids (bill, person, household, region, level, tag, layer): arrays of str (or int) without nulls;
- dates: ``datetime64[D]`` (NaT = missing) or int days since 1970-01-01;
- money, quantities, ratios: integer arrays; a nullable column comes with a boolean ``*_null``
  mask (True = null); where the mask is set the value is ignored;
- ``row``: the row number of each record in its source (default ``0..n-1``), used in rejects.

Modules: ``inputs`` (the column tables, ``Reject``, array helpers), ``prepare`` (checks and the
kernel's arrays), ``persontable`` (the persons table checked once), ``buffers`` (output buffers reused from batch to batch), ``results`` (running the kernel, result columns). No file formats here: the
adapters read and write the files.

The package imports nothing itself (PEP 562 ``__getattr__``): ``engine.columnar.inputs`` (plain
numpy, used by ``engine.simulate`` and so by ``onestop policy whatif``) must not load the kernel
and numba with it. ``from engine.columnar import prepare_columns`` and ``C.run`` still work: the
first use of a name imports its submodule (``prepare`` and ``results`` import the kernel).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names mypy sees; at run time ``__getattr__`` imports them on first use
    from engine import kernel as K
    from engine.columnar.buffers import OutputBuffers
    from engine.columnar.inputs import (
        BillCols,
        Coded,
        ItemCols,
        OpeningCols,
        PersonCols,
        Reject,
        age_on,
        category_codes,
        lookup,
        take,
        unique,
    )
    from engine.columnar.opening import check_opening
    from engine.columnar.persontable import PersonTable, person_table
    from engine.columnar.prepare import Prepared, prepare_columns
    from engine.columnar.results import (
        alert_columns,
        bill_columns,
        closing_columns,
        columns_from_bills,
        fund_figures,
        item_fund_columns,
        layer_columns,
        layer_fields,
        plain,
        run,
        settle_columns,
    )

#: name -> the module that defines it
_WHERE = {
    "K": "engine.kernel",
    **dict.fromkeys(
        ("BillCols", "Coded", "ItemCols", "OpeningCols", "PersonCols", "Reject", "age_on",
         "category_codes", "lookup", "take", "unique"),
        "engine.columnar.inputs",
    ),
    **dict.fromkeys(("Prepared", "prepare_columns"), "engine.columnar.prepare"),
    "check_opening": "engine.columnar.opening",
    "OutputBuffers": "engine.columnar.buffers",
    **dict.fromkeys(("PersonTable", "person_table"), "engine.columnar.persontable"),
    **dict.fromkeys(
        ("alert_columns", "bill_columns", "closing_columns", "columns_from_bills", "fund_figures",
         "item_fund_columns", "layer_columns", "layer_fields", "plain", "run", "settle_columns"),
        "engine.columnar.results",
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where)
    value = module if name == "K" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "BillCols",
    "Coded",
    "ItemCols",
    "K",
    "OpeningCols",
    "OutputBuffers",
    "PersonCols",
    "PersonTable",
    "Prepared",
    "Reject",
    "age_on",
    "alert_columns",
    "bill_columns",
    "category_codes",
    "check_opening",
    "closing_columns",
    "columns_from_bills",
    "fund_figures",
    "item_fund_columns",
    "layer_columns",
    "layer_fields",
    "lookup",
    "person_table",
    "plain",
    "prepare_columns",
    "run",
    "settle_columns",
    "take",
    "unique",
]  # fmt: skip
