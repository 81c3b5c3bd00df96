"""protos/buf-check.sh (``make buf``) in a throwaway git repository holding a copy of protos/:
a breaking change fails it unless the commits of the range add an entry to
protos/breaking-accepted.md; then the findings are printed and accepted.

Uses the buf that ``make buf`` installed (protos/node_modules, pinned in package-lock.json);
skipped, saying so, where it is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROTOS = Path(__file__).resolve().parent.parent / "protos"
MODULES = PROTOS / "node_modules"


def _installed() -> bool:
    return (MODULES / ".bin" / "buf").exists() and any(MODULES.glob(".installed-*"))


pytestmark = pytest.mark.skipif(
    not _installed(), reason="buf not installed in protos/node_modules (run make buf)"
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def check(repo: Path, against: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["BUF_AGAINST"] = against
    return subprocess.run(
        ["sh", "protos/buf-check.sh"], cwd=repo, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: today's protos; branch work checked out."""
    r = tmp_path / "repo"
    shutil.copytree(PROTOS, r / "protos", ignore=shutil.ignore_patterns("node_modules"))
    (r / "protos" / "node_modules").symlink_to(MODULES)
    (r / ".gitignore").write_text("node_modules\n")
    git(r, "init", "-q", "-b", "main")
    git(r, "config", "user.email", "test@example.invalid")
    git(r, "config", "user.name", "test")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "base")
    git(r, "checkout", "-qb", "work")
    return r


def drop_claim_reason(repo: Path) -> None:
    f = repo / "protos/onestop/settlement/v1/funds.proto"
    text = f.read_text()
    line = "  string reason = 22;  // The rejection's reason.\n"
    assert line in text
    f.write_text(text.replace(line, "  reserved 22;  // was reason\n"))
    git(repo, "commit", "-qam", "drop Claim.reason")


def test_no_change_passes(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "nothing")
    r = check(repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "buf lint: clean" in r.stdout and "buf breaking: none against" in r.stdout


def test_break_without_log_entry_fails(repo: Path) -> None:
    drop_claim_reason(repo)
    r = check(repo)  # base: the merge base with main
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'field "22" with name "reason" on message "Claim" was deleted' in r.stdout
    assert "1 findings against" in r.stderr and "protos/breaking-accepted.md" in r.stderr


def test_break_with_log_entry_in_range_is_accepted(repo: Path) -> None:
    drop_claim_reason(repo)
    log = repo / "protos/breaking-accepted.md"
    log.write_text(log.read_text() + "\n## 2026-12-02: Claim.reason removed\n\nwhy, clients\n")
    git(repo, "commit", "-qam", "log the break")
    r = check(repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'name "reason" on message "Claim" was deleted' in r.stdout  # still printed
    assert (
        "buf breaking: 1 findings accepted by protos/breaking-accepted.md (changed in this range)"
        in r.stdout
    )
    # the entry was made before this range: a new break is not covered by it
    drop_field = repo / "protos/onestop/settlement/v1/funds.proto"
    drop_field.write_text(drop_field.read_text().replace("  string note = 21;", "  reserved 21;"))
    git(repo, "commit", "-qam", "drop Claim.note")
    r = check(repo, against="HEAD~1")
    assert r.returncode == 1, r.stdout + r.stderr


def test_uncommitted_or_deleting_log_edits_do_not_accept(repo: Path) -> None:
    drop_claim_reason(repo)
    log = repo / "protos/breaking-accepted.md"
    log.write_text(log.read_text() + "\n## not committed\n")
    r = check(repo)
    assert r.returncode == 1, r.stdout + r.stderr
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-3]))
    git(repo, "commit", "-qam", "only lines taken out of the log")
    r = check(repo)
    assert r.returncode == 1, r.stdout + r.stderr
