#!/usr/bin/env bash
# Builds the Debian packages libapache2-mod-wsock and libapache2-mod-wsock-dev
# (debian/) and puts the .debs (with .buildinfo/.changes) in OUTDIR.
#   scripts/build-deb.sh [--nocheck] [OUTDIR]      (default OUTDIR: ./debs)
# --nocheck skips the Check unit tests of the package build (DEB_BUILD_OPTIONS).
# The build runs in a temporary copy of the tree's sources (git's tracked and
# untracked-but-not-ignored files, so uncommitted edits are packaged too):
# dpkg-buildpackage writes its output into the parent directory and builds in
# place, which would litter a CI clone or clash with a configured tree.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
nocheck=""
if [[ "${1:-}" == "--nocheck" ]]; then
    nocheck=1
    shift
fi
out=${1:-$repo/debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/install-deps.sh --deb

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/wsock-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/libapache2-mod-wsock-$version"
mkdir "$src"
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 \
    || { echo "build-deb: needs a git checkout (it packages git's files)" >&2; exit 1; }
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done \
    | tar -cf - --null -T - | tar -xf - -C "$src"

# Run from `make check` (the package test), the outer make's flags and
# jobserver must not leak into debian/rules' own make.
unset MAKEFLAGS MFLAGS MAKELEVEL
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$(nproc)${nocheck:+ nocheck}"
(cd "$src" && dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
    tail -n 60 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
ls -1 "$out"/*_"$version"_*.deb
