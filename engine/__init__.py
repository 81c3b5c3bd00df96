"""onestop: the one-stop discharge settlement engine.

The pure core: bills, policy tables, the plain reference rules, the numba kernel and the
use cases. Nothing here imports gRPC, SQL or file-format adapters.
"""

__version__ = "0.1.0"
