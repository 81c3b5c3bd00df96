"""Catalogue of broken policy tables (OpenFisca style), domain.md section 9.

Each file in tests/broken_policies/ starts with a line ``# expect: word1 | word2 | ...``: loading
it with ``load_table`` must raise PolicyError whose text names the file and contains every word
(the path inside the table, the offending value, the rule). Adding a case is adding a file.

Cases listed in KNOWN_ISSUES fail today because of an engine bug or an unclear message; they are
strict xfails, so the fix turns them into failures that ask for the entry to be removed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.policy.load import load_policies, load_table

HERE = Path(__file__).resolve().parent / "broken_policies"
FILES = sorted(HERE.glob("*.yaml"))

# refused wrongly (not as PolicyError) or not refused at all: both tests fail today
KNOWN_BUGS: dict[str, str] = {}
# refused as PolicyError, but the message lacks the unit or the fix
UNCLEAR: dict[str, str] = {}
KNOWN_ISSUES = {**KNOWN_BUGS, **UNCLEAR}


def expected_words(path: Path) -> list[str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect:"), f"{path.name}: first line must be '# expect: ...'"
    words = [w.strip() for w in first.removeprefix("# expect:").split("|")]
    assert all(words), f"{path.name}: empty word in the expect line"
    return words


def _param(path: Path, known: dict[str, str]):
    marks: tuple[pytest.MarkDecorator, ...] = ()
    if path.name in known:
        marks = (pytest.mark.xfail(reason=known[path.name], strict=True),)
    return pytest.param(path, id=path.stem, marks=marks)


def test_catalogue_is_large_enough():
    assert len(FILES) >= 14
    assert set(KNOWN_ISSUES) <= {f.name for f in FILES}


@pytest.mark.parametrize("path", [_param(f, KNOWN_ISSUES) for f in FILES])
def test_broken_table_is_refused_with_a_clear_message(path: Path):
    words = expected_words(path)
    with pytest.raises(PolicyError) as info:
        load_table(path)
    message = str(info.value)
    assert str(path) in message, "the error must name the file"
    # the words must come from the reason, not from the file's own name
    reason = message.replace(str(path), "<file>")
    missing = [w for w in words if w not in reason]
    assert not missing, f"{path.name}: {missing} not in:\n{message}"
    for problem in info.value.problems:
        assert problem.file == str(path)


@pytest.mark.parametrize("path", [_param(f, KNOWN_BUGS) for f in FILES])
def test_broken_table_refuses_its_whole_directory(path: Path, tmp_path: Path):
    """A directory is loaded all or nothing: one broken table refuses the set."""
    good = tmp_path / "good.yaml"
    good.write_text(_table("990002", "2020-01-01", "2020-12-31"), encoding="utf-8")
    bad = tmp_path / path.name
    bad.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert str(bad) in str(info.value)
    assert str(good) not in str(info.value)


def _table(code: str, start: str, end: str | None) -> str:
    end_line = f"effective_to: {end}\n" if end else ""
    return (
        textwrap.dedent(
            f"""\
        region: {{code: "{code}", name: "Overlap test county"}}
        effective_from: {start}
        """
        )
        + end_line
        + textwrap.dedent(
            """\
        hospital_levels: [county]
        b_selfpay_ratio: 1000
        layers:
          - id: basic
            name: Basic
            fund_code: "390100"
            kind: reimburse
            variants:
              - segments: [{ratio: 7000}]
        """
        )
    )


def _write(directory: Path, tables: dict[str, tuple[str, str, str | None]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (code, start, end) in tables.items():
        (directory / name).write_text(_table(code, start, end), encoding="utf-8")


def test_base_of_the_catalogue_loads(tmp_path: Path):
    """The cases break a table that is otherwise sound: with the break undone it loads."""
    _write(tmp_path, {"a.yaml": ("990001", "2020-01-01", "2020-12-31")})
    assert load_policies(tmp_path).regions == ["990001"]


@pytest.mark.parametrize(
    "ranges",
    [
        # the second starts before the first ends
        [("2019-01-01", "2019-12-31"), ("2019-07-01", "2020-06-30")],
        # the same day in both
        [("2019-01-01", "2019-12-31"), ("2019-12-31", "2020-12-31")],
        # an open-ended table followed by a later one
        [("2019-01-01", None), ("2020-01-01", "2020-12-31")],
        # one table inside another
        [("2019-01-01", "2021-12-31"), ("2020-03-01", "2020-04-30")],
        # identical ranges
        [("2020-01-01", "2020-12-31"), ("2020-01-01", "2020-12-31")],
    ],
    ids=["straddle", "one-day", "open-end", "nested", "identical"],
)
def test_overlapping_tables_of_one_region_are_refused(tmp_path: Path, ranges):
    (s1, e1), (s2, e2) = ranges
    _write(tmp_path, {"first.yaml": ("990001", s1, e1), "second.yaml": ("990001", s2, e2)})
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    message = str(info.value)
    for word in ("overlaps", "990001", "must not overlap"):
        assert word in message
    assert "first.yaml" in message and "second.yaml" in message


def test_three_tables_one_spanning_the_others_are_refused(tmp_path: Path):
    _write(
        tmp_path,
        {
            "a.yaml": ("990001", "2019-01-01", "2021-12-31"),
            "b.yaml": ("990001", "2019-03-01", "2019-03-31"),
            "c.yaml": ("990001", "2020-06-01", "2020-06-30"),
        },
    )
    with pytest.raises(PolicyError, match="overlaps"):
        load_policies(tmp_path)


def test_adjacent_or_other_region_tables_are_accepted(tmp_path: Path):
    _write(
        tmp_path,
        {
            "a2019.yaml": ("990001", "2019-01-01", "2019-12-31"),
            "a2020.yaml": ("990001", "2020-01-01", None),
            "b2019.yaml": ("990002", "2019-06-01", "2020-05-31"),
        },
    )
    policies = load_policies(tmp_path)
    assert policies.regions == ["990001", "990002"]
    assert len(policies.tables) == 3
