#!/usr/bin/env sh
# make buf: buf lint (STANDARD, protos/buf.yaml) and buf breaking against the base commit, with
# the buf pinned in protos/package-lock.json (installed by npm ci into protos/node_modules).
# Without node/npm it skips, saying why. Base: BUF_AGAINST if set, else the merge base with
# main (a branch), else HEAD~1 (main itself).
# A deliberate break is accepted only through protos/breaking-accepted.md: when the commits
# base..HEAD add lines to it (an entry: date, what broke, why, what clients do), the findings
# are printed and accepted (exit 0); otherwise any finding fails (exit 1). Uncommitted edits of
# the log do not count: the entry is reviewed in the diff like the break itself.
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "make buf: skipped: node/npm not found (buf comes from npm: protos/package-lock.json)"
  exit 0
fi
stamp=node_modules/.installed-$(cksum < package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ]; then
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  touch "$stamp"
fi
buf=node_modules/.bin/buf
$buf lint
echo "buf lint: clean (STANDARD, no exceptions: protos/buf.yaml)"
head=$(git rev-parse HEAD)
against=${BUF_AGAINST:-}
if [ -z "$against" ]; then
  against=$(git merge-base HEAD main 2>/dev/null || true)
  if [ -z "$against" ] || [ "$against" = "$head" ]; then against=HEAD~1; fi
fi
if ! git rev-parse --verify -q "$against^{commit}" >/dev/null; then
  echo "buf breaking: skipped: no commit $against here (a shallow clone?)"
  exit 0
fi
# The workspace has two modules and the base may have one, two or no buf.yaml, so the onestop
# protos of both sides are built into one image each (--path onestop) and compared (rules: FILE,
# wire and generated code).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$buf build . --path onestop -o "$tmp/now.binpb"
top=$(git rev-parse --show-toplevel)
$buf build "$top/.git#ref=$against,subdir=protos" --path onestop -o "$tmp/base.binpb"
base=$(git rev-parse --short "$against")
rc=0
$buf breaking "$tmp/now.binpb" --against "$tmp/base.binpb" >"$tmp/findings" 2>&1 || rc=$?
cat "$tmp/findings"
if [ "$rc" -eq 0 ]; then
  echo "buf breaking: none against $base"
  exit 0
fi
if [ "$rc" -ne 100 ]; then  # 100: findings; anything else: buf itself failed
  echo "buf breaking: failed (exit $rc) against $base" >&2
  exit "$rc"
fi
n=$(grep -c . "$tmp/findings" || true)
log=breaking-accepted.md
added=$(git diff --numstat "$against" HEAD -- "$log" | cut -f1)
if [ -n "$added" ] && [ "$added" != 0 ]; then
  echo "buf breaking: $n findings accepted by protos/$log (changed in this range)"
  exit 0
fi
echo "buf breaking: $n findings against $base; a deliberate break needs an entry in protos/$log" \
  "(date, what broke, why, what clients do) committed in the same range" >&2
exit 1
