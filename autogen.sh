#!/bin/sh
# Regenerates configure and Makefile.in from configure.ac and Makefile.am.
set -e
cd "$(dirname "$0")"
out=$(autoreconf --install --force 2>&1) || { echo "$out" >&2; exit 1; }
