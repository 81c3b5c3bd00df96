"""What-if over a batch: the figures of a base run against a candidate run (issue 12).

Arrays in, figures out: ``figures(base, candidate, ...)`` joins the two runs' per-bill and
per-layer results by (hospital, bill id) and returns the dict of adapters/simulate/FIGURES.md
(schema ``onestop.simulate/1``). Nothing here settles a bill: both runs come from the batch
engine (``onestop batch``'s code) or, for ``onestop policy whatif``, from ``settle_batch``.
"""

from engine.simulate.figures import SCHEMA, figures
from engine.simulate.runs import Attrs, LayerInfo, Run

__all__ = ["SCHEMA", "Attrs", "LayerInfo", "Run", "figures"]
