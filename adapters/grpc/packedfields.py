"""The field names of a ``PackedBills`` message's joined per-bill strings, for the side that
writes them (``adapters.grpc.client``) and the side that reads them (``packedtext``): names
only, so that a window client imports neither numba nor ``engine.columnar`` to send one bill."""

from __future__ import annotations

#: per-bill column -> (its index field, its table field)
INDEXED = {
    "person_ids": ("person_index_i32", "person_table"),
    "hospitals": ("hospital_index_i32", "hospital_table"),
    "regions": ("region_index_i32", "region_table"),
}
#: per-bill date column -> its joined field (10 ASCII bytes a bill)
DATES = {
    "admission_dates": "admission_dates_joined",
    "discharge_dates": "discharge_dates_joined",
}
DATE_BYTES = 10
