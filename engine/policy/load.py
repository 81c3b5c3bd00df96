"""Loading policy tables from YAML files, refusing bad ones loudly.

Every problem names the file, the line where YAML puts it, the path inside the table and the
reason. A directory is loaded as one ``PolicySet``: all of its ``*.yaml`` files or none (not
funds.yaml, nothing inside a ``cases/`` or ``drafts/`` folder below it: ``policy_files``).

Hostile text is refused before any walk of the document (``_scan``, over YAML's event stream,
which is not recursive): a table above MAX_TABLE_BYTES, nested deeper than MAX_TABLE_DEPTH
(the composer and the constructor recurse), with an anchor or alias (an "alias bomb" of a few
hundred bytes expands to billions of nodes; tables never need them), or with a NUL character.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import PolicyError, PolicyProblem
from engine.policy.checks import check_table
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.validation import dotted


class _Lines:
    """Path ('layers[1].variants[0].segments') -> line number, from YAML's node tree."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def line(self, path: tuple[Any, ...]) -> int | None:
        node, best = self.root, None
        for part in path:
            if node is None:
                break
            best = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else None
            else:
                node = None
        if node is not None:
            best = node.start_mark.line + 1
        return best


def _yaml_reason(err: yaml.YAMLError) -> str:
    """PyYAML's reason on one line: the problem and its column (the line is the problem's own),
    then what it was parsing and where that began; its own text runs over four lines, each
    naming the file again."""
    problem = getattr(err, "problem", None)
    if not problem:
        return " ".join(str(err).split())
    mark, context = getattr(err, "problem_mark", None), getattr(err, "context", None)
    said = problem + (f" (column {mark.column + 1})" if mark is not None else "")
    if context:
        cmark = getattr(err, "context_mark", None)
        said += f", {context}" + (
            f" from line {cmark.line + 1}, column {cmark.column + 1}" if cmark is not None else ""
        )
    return said


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            sub = f"{path}.{k.value}" if path else str(k.value)
            if k.value in seen:
                found.append((sub, k.start_mark.line + 1))
            seen.add(k.value)
            found += _duplicate_keys(v, sub)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found += _duplicate_keys(v, f"{path}[{i}]")
    return found


def _parse_path(path: str) -> tuple[Any, ...]:
    parts: list[Any] = []
    for chunk in path.replace("]", "").split("."):
        head, *idx = chunk.split("[")
        if head:
            parts.append(head)
        parts += [int(i) for i in idx]
    return tuple(parts)


#: Limits of one policy table (the sample tables are 12 KB and 8 levels deep).
MAX_TABLE_BYTES = 256 * 1024
MAX_TABLE_DEPTH = 32


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, but dates stay text: pydantic parses them and names a bad one
    (2020-13-01) with its path, instead of YAML failing with no location. Aliases are refused
    here too (``_scan`` refuses them first; this guards any other use of the loader)."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

if getattr(yaml, "__with_libyaml__", False):

    class _FastLoader(yaml.CSafeLoader):
        """The same loader on libyaml's parser: about 4x faster (PutPolicy, start-up).
        Aliases never reach it: ``_scan`` refuses them first."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    _LOADER: Any = _FastLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _LOADER = _Loader


def _named(text: str, name: str) -> io.StringIO:
    stream = io.StringIO(text)
    stream.name = name
    return stream


def _refuse(file: str, reason: str, line: int | None = None) -> PolicyError:
    return PolicyError([PolicyProblem(file, "", reason, line)])


def _scan(text: str, file: str) -> None:
    """Refuse what would make composing the document costly (see the module's doc), before
    the composer runs. YAML syntax errors are left to the loader (it names them the same)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TABLE_BYTES:
        raise _refuse(file, f"is {size} bytes, above the limit MAX_TABLE_BYTES = {MAX_TABLE_BYTES}")
    nul = text.find("\x00")
    if nul >= 0:
        raise _refuse(file, "holds a NUL character; a table is text", text.count("\n", 0, nul) + 1)
    depth = 0
    try:
        for event in yaml.parse(_named(text, file), Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _refuse(
                    file,
                    "uses a YAML anchor or alias (& or *); they are not allowed in policy "
                    "tables: write the values out",
                    line,
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_TABLE_DEPTH:
                    raise _refuse(
                        file,
                        f"is nested deeper than the limit MAX_TABLE_DEPTH = {MAX_TABLE_DEPTH}",
                        line,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return


def compose(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The YAML document of a table-like file (policy tables, the principals file) and its node
    tree (for line numbers): refused before composing when it would be costly (``_scan``),
    composed on the fast loader; PolicyError for invalid YAML or a key given twice."""
    _scan(text, file)
    try:
        loader = _LOADER(_named(text, file))
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(
            [PolicyProblem(file, "", f"is not valid YAML: {_yaml_reason(err)}", line)]
        ) from None
    dupes = _duplicate_keys(node)
    if dupes:
        raise PolicyError(
            [PolicyProblem(file, p, "is given twice; each key once", line) for p, line in dupes]
        )
    return node, data


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, file: str, lines: _Lines) -> M:
    """``model`` from a composed table-like document; PolicyError with every problem, each
    naming file:line and the path (shared by policy tables and fund declarations)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        errors = err.errors()
        locs = [tuple(p for p in e["loc"] if not str(p).startswith("function-")) for e in errors]
        for e, loc in zip(errors, locs, strict=True):
            if e["type"] == "too_short" and any(
                len(o) > len(loc) and o[: len(loc)] == loc for o in locs
            ):
                continue  # a list emptied by its own bad items: the items' errors say it all
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "missing":
                msg = "is missing; it is required"
            elif e["type"] == "extra_forbidden":
                msg = "is not a known field; check its spelling"
            elif e["type"] == "too_short":
                msg = "is empty; give at least one"
            elif (
                "input" in e
                and not isinstance(e["input"], dict | list)
                and repr(e["input"]) not in msg
            ):
                msg = f"{e['input']!r}: {msg}"
            problems.append(PolicyProblem(file, dotted(loc), msg, lines.line(loc)))
        raise PolicyError(problems) from None


def parse_checked(
    text: str, file: str, model: type[M], check: Callable[[M], list[tuple[str, str]]], what: str
) -> M:
    """YAML text as ``model`` (``validated``), then its cross-field problems (``check``: as
    (path, reason)); PolicyError with every problem found, each at its line. ``what``: what the
    file is, said when its YAML is not a mapping."""
    node, data = compose(text, file)
    if not isinstance(data, dict):
        raise PolicyError([PolicyProblem(file, "", f"is not a mapping; {what}")])
    lines = _Lines(node)
    parsed = validated(model, data, file, lines)
    found = check(parsed)
    if found:
        raise PolicyError([PolicyProblem(file, p, r, lines.line(_parse_path(p))) for p, r in found])
    return parsed


def parse_table(text: str, file: str = "<text>") -> PolicyTable:
    """One table from YAML text; PolicyError with every problem found."""
    return parse_checked(
        text, file, PolicyTable, check_table,
        "a policy table is a YAML mapping with region, effective_from, layers, ...",
    )  # fmt: skip


def read_text(p: Path) -> str:
    """A table's (or funds file's) text; PolicyError naming the file when it cannot be read or
    is not UTF-8 (a file saved in GBK), never the decoder's exception."""
    try:
        return p.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError([PolicyProblem(str(p), "", f"cannot be read: {err.strerror}")]) from None
    except UnicodeDecodeError as err:
        raise PolicyError(
            [PolicyProblem(str(p), "", f"is not UTF-8 text (byte {err.start}); save it as UTF-8")]
        ) from None


def load_table(path: str | Path) -> PolicyTable:
    p = Path(path)
    return parse_table(read_text(p), str(p))


#: a file of this name in a policy directory declares the region's funds (engine.funds), not a table
FUNDS_FILE = "funds.yaml"


#: Folders under a policy directory that hold no tables in force: ``cases`` (the case files
#: bureaus write for ``onestop test``) and ``drafts`` (next year's tables, for the what-if).
NOT_TABLE_DIRS = frozenset({"cases", "drafts"})


def policy_files(path: str | Path) -> list[Path]:
    """The policy tables under ``path``: a file given directly (whatever its name or folder),
    or every *.yaml / *.yml below a directory except the fund declarations (FUNDS_FILE) and
    anything inside a folder named in NOT_TABLE_DIRS (``cases/``, ``drafts/``) below it."""
    p = Path(path)
    if p.is_dir():
        return sorted(
            q
            for q in p.rglob("*.y*ml")
            if q.is_file()
            and q.name != FUNDS_FILE
            and not NOT_TABLE_DIRS.intersection(q.relative_to(p).parts[:-1])
        )
    return [p]


def load_policies(*paths: str | Path) -> PolicySet:
    """Every table under the given files or directories, as one set; all problems at once."""
    tables: list[tuple[str, PolicyTable]] = []
    problems: list[PolicyProblem] = []
    files = [f for path in paths for f in policy_files(path)]
    if not files:
        where = ", ".join(str(p) for p in paths)
        raise PolicyError([PolicyProblem(where, "", "holds no policy tables (*.yaml)")])
    for f in files:
        try:
            tables.append((str(f), load_table(f)))
        except PolicyError as err:
            problems += err.problems
    if problems:
        raise PolicyError(problems)
    return PolicySet.of(tables)
