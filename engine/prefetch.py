"""A cache-line prefetch hint for compiled kernels.

``prefetch(arr, offset)`` asks the CPU to start bringing the cache line that holds byte
``offset`` of ``arr``'s data into cache (LLVM's ``llvm.prefetch``: a read, kept in every cache
level). It is only a hint: it loads nothing into the program, cannot fault on any address and
returns nothing, so it cannot change what a kernel computes. ``engine.kernel`` uses it for the
next bill's account rows, which it gathers by slot (benchmarks/README.md, "Branch layers").
Under ``NUMBA_DISABLE_JIT`` it is a plain no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba.core import cgutils, config, types
from numba.extending import intrinsic


def _noop(arr: Any, offset: int) -> None:
    """The hint in plain Python (``NUMBA_DISABLE_JIT``): nothing to do."""


@intrinsic
def _prefetch(typingctx: Any, arr: Any, offset: Any) -> Any:
    if not isinstance(arr, types.Array) or not isinstance(offset, types.Integer):
        return None  # no such signature: numba reports a typing error
    sig = types.void(arr, offset)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        off = context.cast(builder, args[1], signature.args[1], types.intp)
        addr = builder.gep(builder.bitcast(data, i8p), [off])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), keep in every cache level (3), data cache (1)
        builder.call(fn, [addr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: called as ``prefetch(arr, offset)`` (numba's intrinsic takes its typing context itself)
prefetch: Callable[[Any, int], None] = (
    _noop if getattr(config, "DISABLE_JIT", 0) else cast(Callable[[Any, int], None], _prefetch)
)
