"""The policy loader parses with libyaml (``yaml.CSafeLoader``) where PyYAML has it: the same
documents and the same node lines as PyYAML's pure-Python safe loader (which it falls back
to), on every YAML file under policies/ (tables, funds, cases, drafts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.policy import load

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(p for p in (ROOT / "policies").rglob("*.y*ml"))


def tree(node: yaml.Node | None) -> Any:
    """A node tree as (tag, line, column, value), children in order."""
    if node is None:
        return None
    mark = (node.tag, node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.MappingNode):
        return (*mark, [(tree(k), tree(v)) for k, v in node.value])
    if isinstance(node, yaml.SequenceNode):
        return (*mark, [tree(v) for v in node.value])
    return (*mark, node.value)


def parsed(loader: type, text: str) -> tuple[Any, Any]:
    ld = loader(text)
    try:
        node = ld.get_single_node()
        return tree(node), ld.construct_document(node) if node is not None else None
    finally:
        ld.dispose()


def test_there_are_files_and_libyaml() -> None:
    assert len(FILES) >= 12
    assert yaml.__with_libyaml__, "the dev install's PyYAML has libyaml"
    assert issubclass(load._LOADER, yaml.CSafeLoader)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_parses_every_policy_file_as_the_pure_loader_does(path: Path) -> None:
    text = path.read_text("utf-8")
    fast, pure = parsed(load._LOADER, text), parsed(load._Loader, text)
    assert fast == pure
    assert fast[1] is not None
    # dates stay text in both (pydantic parses them and names a bad one)
    assert "2002:timestamp" not in repr(fast[0])
