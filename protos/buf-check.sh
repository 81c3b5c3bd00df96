#!/usr/bin/env sh
# make buf: buf lint (STANDARD, protos/buf.yaml) and buf breaking against the base commit, with
# the buf pinned in protos/package-lock.json (installed by npm ci into protos/node_modules).
# Without node/npm it skips, saying why. Base: BUF_AGAINST if set, else the merge base with
# main (a branch), else HEAD~1 (main itself).
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
echo "buf lint: clean (STANDARD, exceptions in protos/buf.yaml)"
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
$buf breaking "$tmp/now.binpb" --against "$tmp/base.binpb"
echo "buf breaking: none against $(git rev-parse --short "$against")"
