"""How every command prints: never a cut figure, never markup printed literally.

On a terminal, tables fit the window and a cell too long folds onto the next line (never
``…``). Anywhere else (a pipe, a file, a test) the text is plain and whole: no width limit,
nothing wrapped or cut, a table's title and caption on lines of their own. Data (ids, names,
reasons, explanations) is printed as text, never read as rich markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console, ConsoleDimensions, JustifyMethod
from rich.table import Table
from rich.text import Text

from adapters.cli.exitcodes import Exit
from engine.errors import InputError, OnestopError, PolicyError

#: the width of "no limit" when the output is not a terminal
WIDE = 1_000_000


class Out(Console):
    """A console that is as wide as its content when it is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self.is_terminal:
            return dims
        return ConsoleDimensions(WIDE, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        # mypy reads a property on its class as the getter's value type, which has no fset
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def print(self, *objects: Any, **kw: Any) -> None:
        if not self.is_terminal:
            kw.setdefault("soft_wrap", True)
        super().print(*objects, **kw)


def console(stderr: bool = False) -> Out:
    """No highlighting and no ``:name:`` emoji codes (a string is printed as it is written;
    and the emoji table, ~3-7 ms of a cached ``onestop settle``, is never imported)."""
    return Out(stderr=stderr, highlight=False, emoji=False)


def text(x: object) -> Text:
    """A cell or line of data: printed as it is, never as markup."""
    return x if isinstance(x, Text) else Text(str(x))


def new_table(title: str, columns: Sequence[str | tuple[str, JustifyMethod]]) -> Table:
    """A table whose cells fold (never ``…``); columns (name, "left"|"right") or names."""
    t = Table(title=title)
    just: JustifyMethod
    for c in columns:
        name, just = (c, "left") if isinstance(c, str) else c
        t.add_column(name, justify=just, overflow="fold")
    return t


def show(con: Console, t: Table) -> None:
    """Print a table: on a terminal as it is (cells fold); elsewhere with its title and caption
    as whole lines of their own, never wrapped to the table's width."""
    for c in t.columns:
        c.overflow = "fold"
    if con.is_terminal:
        con.print(t)
        return
    title, caption = t.title, t.caption
    t.title = t.caption = None
    if title:
        con.print(text(title) if isinstance(title, str) else title)
    con.print(t)
    if caption:
        con.print(text(caption) if isinstance(caption, str) else caption)
    t.title, t.caption = title, caption


def print_json(doc: Any) -> None:
    """JSON on stdout, whole and plain (money in integer fen)."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def problem_line(con: Console, label: str, rest: str = "") -> None:
    """``label`` in red (on a terminal), then ``rest`` as plain text, never markup."""
    line = Text(label, style="red")
    if rest:
        line.append(" " + rest)
    con.print(line)


def fail(err: Console, e: OnestopError, what: str = "") -> NoReturn:
    """Print every problem on ``err`` (as text, never markup) and exit 1 (refused): one
    problem on one line with the label, several under a line that counts them."""
    pre = f"{what}: " if what else ""
    if isinstance(e, InputError | PolicyError):
        label = "refused:" if isinstance(e, InputError) else "policy refused:"
        print_problems(err, label, e.problems, pre)
    else:
        problem_line(err, "error:", f"{pre}{e}")
    raise SystemExit(Exit.REFUSED)


def print_problems(err: Console, label: str, problems: Sequence[object], pre: str = "") -> None:
    """One problem on one line after ``label``; several under a line that counts them, one a
    line (as text, never markup)."""
    if len(problems) == 1:
        problem_line(err, label, f"{pre}{problems[0]}")
        return
    problem_line(err, label, f"{pre}{len(problems)} problem(s)")
    for p in problems:
        err.print(text(f"  {p}"))


def tidy_help() -> None:
    """typer's --help shows an argument's Python type (``<list[Path]>``) even when it has a
    metavar, and writes required arguments as ``{bills}...``; a flag gets ``<bool>``. Show
    the metavar (``BILL.json...``), ``[X]`` only for optional arguments, nothing for flags."""
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - another typer
        return

    def plain(shown: str | None) -> str | None:
        # "<list[Path]>" -> "<path>": the usage line already says it repeats ("...")
        if shown and "list[" in shown:
            inner = shown.split("list[", 1)[1].split("]", 1)[0]
            return f"<{inner.lower()}>"
        return shown

    def arg_type(self: Any, ctx: Any) -> str | None:
        return None if self.metavar else plain(TyperArgument.display_type(self, ctx))

    def arg_usage(self: Any) -> str:
        name = self.metavar or self.name.upper()
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"

    flag_type = getattr(TyperOption, "display_type_rich", None)
    if flag_type is None:  # pragma: no cover - a typer without the hook: its own help
        return

    def opt_type(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else plain(flag_type(self, ctx))

    # typer's help rendering patched on its classes (the point of this function): mypy
    # refuses any assignment to a method
    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = arg_usage  # type: ignore[method-assign]  # as above
    TyperArgument.display_type_rich = arg_type  # type: ignore[method-assign]  # as above
    TyperOption.display_type_rich = opt_type  # type: ignore[method-assign]  # as above
    _tidy_listing()


#: the mark on a help function that joins the summaries' lines (installed once)
_JOINS = "_joins_summaries"


def _tidy_listing() -> None:
    """A group's --help lists each command with the first paragraph of its docstring; typer
    keeps that paragraph's line breaks in the listing (never in the command's own help), so a
    docstring wrapped at 100 columns printed as ``...A table with`` / ``the same region...``
    mid-sentence. Join the paragraph's lines before typer renders it. typer.rich_utils (rich:
    ~0.3 s) is imported only when a help is rendered, so the join is installed then."""
    from typer.core import TyperGroup

    shown = TyperGroup.format_help
    if getattr(shown, _JOINS, False):
        return

    def format_help(self: Any, ctx: Any, formatter: Any) -> None:
        _join_summaries()
        shown(self, ctx, formatter)

    setattr(format_help, _JOINS, True)
    # typer's group help patched on its class (the point): mypy refuses assigning a method
    TyperGroup.format_help = format_help  # type: ignore[method-assign]


def _join_summaries() -> None:
    import inspect

    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - typer without rich: click's listing joins them
        return
    made = getattr(rich_utils, "_make_command_help", None)
    if made is None or getattr(made, _JOINS, False):
        return  # pragma: no cover - another typer: its own listing

    def make(*, help_text: str, markup_mode: Any) -> Any:
        first, sep, rest = inspect.cleandoc(help_text).partition("\n\n")
        if not first.startswith("\b"):  # click's marker: keep these lines as written
            first = " ".join(first.split())
        return made(help_text=first + sep + rest, markup_mode=markup_mode)

    setattr(make, _JOINS, True)
    rich_utils._make_command_help = make
