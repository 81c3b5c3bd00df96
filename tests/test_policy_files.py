"""Which files of a policy directory are tables: not funds.yaml, nothing under cases/ or drafts/
(README, "Cases bureaus write" and "What-if over a year of bills"); a file named directly is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.funds import funds_files
from engine.policy.load import load_policies, policy_files

ROOT = Path(__file__).resolve().parents[1]
HONGAN = ROOT / "policies" / "hongan" / "2018.yaml"


@pytest.mark.parametrize("folder", ["cases", "drafts"])
def test_tables_under_cases_or_drafts_are_not_loaded(tmp_path: Path, folder: str) -> None:
    county = tmp_path / "x"
    (county / folder / "deeper").mkdir(parents=True)
    shutil.copy(HONGAN, county / "2018.yaml")
    # the same table again: loaded, it would overlap the first and refuse the directory
    shutil.copy(HONGAN, county / folder / "hongan-2018.yaml")
    shutil.copy(HONGAN, county / folder / "deeper" / "again.yml")
    assert policy_files(tmp_path) == [county / "2018.yaml"]
    assert load_policies(tmp_path).files == (str(county / "2018.yaml"),)
    # the same copy one folder up, not in cases/ or drafts/, is a table: the loader would see it
    shutil.copy(HONGAN, county / "copy.yaml")
    with pytest.raises(PolicyError):
        load_policies(tmp_path)


def test_a_file_named_directly_is_loaded_wherever_it_lives(tmp_path: Path) -> None:
    draft = tmp_path / "policies" / "drafts" / "next.yaml"
    draft.parent.mkdir(parents=True)
    shutil.copy(HONGAN, draft)
    assert policy_files(draft) == [draft]
    assert load_policies(draft).regions == ["421122"]
    # so is a drafts/ folder named itself: only folders of that name below it are skipped
    assert load_policies(draft.parent).files == (str(draft),)


def test_the_repository_policies_hold_no_case_or_draft_as_a_table() -> None:
    files = policy_files(ROOT / "policies")
    assert files and all(f.parent.name not in ("cases", "drafts") for f in files)
    assert (ROOT / "policies" / "cases").is_dir()  # the case files live there, not loaded


def test_funds_files_under_cases_or_drafts_are_not_in_force(tmp_path: Path) -> None:
    funds = ROOT / "policies" / "hongan" / "funds.yaml"
    (tmp_path / "x" / "drafts").mkdir(parents=True)
    shutil.copy(funds, tmp_path / "x" / "funds.yaml")
    shutil.copy(funds, tmp_path / "x" / "drafts" / "funds.yaml")
    assert funds_files(tmp_path) == [tmp_path / "x" / "funds.yaml"]
    assert funds_files(tmp_path / "x" / "drafts" / "funds.yaml") == [
        tmp_path / "x" / "drafts" / "funds.yaml"
    ]
