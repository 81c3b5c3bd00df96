"""``benchmarks/settle_pieces.py`` runs end to end on a small SQLite store and prints every
table it promises; too few calls for its groups are refused by the option parser."""

from __future__ import annotations

import pytest

from benchmarks import settle_pieces


def test_settle_pieces_prints_the_loop_and_writer_tables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        settle_pieces.main(["--store", "sqlite", "--calls", "12", "--reps", "1", "--top", "3"]) == 0
    )
    out = capsys.readouterr().out
    assert "store sqlite, 12 calls of 100 items, groups of 4" in out
    assert "| `requestwire.settle_columns` |" in out
    assert "the writer: `settle_group` of 4:" in out
    assert "| `ledger.settle_event` (its canonical check) |" in out
    assert "cProfile (thread CPU), 4 Settles:" in out


def test_settle_pieces_refuses_too_few_calls(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        settle_pieces.main(["--store", "sqlite", "--calls", "8"])
    assert exc.value.code == 2
    assert "--calls 8 --group 4" in capsys.readouterr().err
