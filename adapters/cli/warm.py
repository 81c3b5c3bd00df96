"""``onestop warm``: compile the numba kernel's variants into its cache, once after installing.

Without it the first command that settles compiles the variant it needs (10-20 s of CPU each);
with it every later process loads them from the cache. ``make setup`` and ``make serve`` run
it; after ``pip install onestop`` run ``onestop warm --policy DIR`` once (again after an
upgrade: numba keys its cache to the source of ``engine/kernel.py``). The variants are listed
in ``engine/warm.py``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.exitcodes import Exit


class Use(StrEnum):
    settle = "settle"
    server = "server"
    batch = "batch"
    all = "all"


def warm(
    policy: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="PATH",
            help="Policy table file or directory, repeatable (default: policies/); "
            "the warm-up settles two made-up bills under its first table.",
        ),
    ] = None,
    for_: Annotated[
        list[Use] | None,
        typer.Option(
            "--for",
            help="Only the variants of: settle (the offline commands), server, batch; "
            "repeatable (default: all).",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes compiling at once (default: one per core, at most 4).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Compile the settlement kernel's variants into numba's cache (once after installing),
    so that no command compiles them on first use."""
    from engine.errors import InputError, OnestopError, PolicyError
    from engine.policy.load import load_policies
    from engine.warm import HELPER, USES, Helper, default_jobs
    from engine.warm import warm as run

    uses = USES if not for_ or Use.all in for_ else tuple(u.value for u in for_)
    try:
        policies = load_policies(*(policy or [Path("policies")]))
    except OnestopError as e:
        problems = e.problems if isinstance(e, InputError | PolicyError) else [e]
        print(f"onestop warm: refused: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        raise typer.Exit(Exit.REFUSED) from None

    def say(items: str, mode: str, took: float) -> None:
        if not quiet:
            what = (
                f"compiled helper {mode}" if items == HELPER else f"kernel variant {items} {mode}"
            )
            print(f"{what}: {took:.1f} s", flush=True)

    also: list[Helper] = []
    if "server" in uses:  # the server's compiled request and bill readers, answer writer (numba)
        from adapters.grpc.billwire import warm_bill_wire
        from adapters.grpc.isodays import warm_iso_days
        from adapters.grpc.packedtext import warm_id_array
        from adapters.grpc.requestwire import warm_request_wire
        from adapters.grpc.resultwire import warm_result_wire

        # the answer writer compiles about as long as three serial kernel variants
        also = [(warm_result_wire, 3), (warm_bill_wire, 0), (warm_iso_days, 0),
                (warm_request_wire, 0), (warm_id_array, 0)]  # fmt: skip
    run(policies, uses, say, jobs=jobs or default_jobs(), also=also)
