"""The inputs of the comparison: one settled run as arrays, and the bills' attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.columnar.inputs import Strings

#: age bands of the breakdown (full years at admission, as the engine's age rules): the first
#: age of each band; 18 and 60/61 are where the eligibility rules of the sample tables cut
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "0-17"), (18, "18-34"), (35, "35-49"), (50, "50-60"), (61, "61-69"), (70, "70-79"),
    (80, "80+"),
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One settled run. Per bill (one row per settled bill): ``hospital``, ``bill_id``,
    ``person_id``, ``household_id``, ``region`` (strings) and ``total``, ``window_pay``,
    ``net_selfpay`` (int64 fen). Per bill and layer of its table (``l_bill`` = the bill's row):
    ``l_layer`` (layer id), ``l_pay``, ``l_relief`` (fen), ``l_alert`` (bool), ``l_cap`` ('' or
    a code of engine.result.CAPS), ``l_reason`` ('' when the layer applied, else a code of
    engine.result.REASONS). ``rejected``: bills the run refused. A string column is a plain
    array or a ``Coded`` one (engine.simulate.columns reads both)."""

    hospital: Strings
    bill_id: Strings
    person_id: Strings
    household_id: Strings
    region: Strings
    total: np.ndarray
    window_pay: np.ndarray
    net_selfpay: np.ndarray
    l_bill: np.ndarray
    l_layer: Strings
    l_pay: np.ndarray
    l_relief: np.ndarray
    l_alert: np.ndarray
    l_cap: Strings
    l_reason: Strings
    rejected: int = 0

    def __len__(self) -> int:
        return len(self.bill_id)


@dataclass(frozen=True)
class LayerInfo:
    """A layer of a table, as the figures name it."""

    fund_code: str
    name: str
    name_zh: str
    kind: str


@dataclass(frozen=True)
class Attrs:
    """What the breakdowns group by, per bill of the base run (aligned with its rows):
    ``hospital_level`` (string), ``age`` (full years at admission) and the person's tags valid
    at admission as pairs (``tag_bill`` = base bill row, ``tag`` = the tag)."""

    hospital_level: Any  # np.ndarray of str, or engine.columnar Coded
    age: np.ndarray
    tag_bill: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tag: np.ndarray = field(default_factory=lambda: np.zeros(0, object))


def age_band_index(age: np.ndarray) -> np.ndarray:
    """The index in AGE_BANDS of each age's band."""
    starts = np.array([a for a, _ in AGE_BANDS])
    return np.clip(np.searchsorted(starts, age, side="right") - 1, 0, len(starts) - 1)
