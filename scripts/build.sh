#!/usr/bin/env bash
# Builds mod_wsock in the source tree (autotools), warnings as errors.
# Reconfigures only when configure.ac or Makefile.am changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x configure || configure.ac -nt configure || Makefile.am -nt Makefile.in ]]; then
    ./autogen.sh
fi
if [[ ! -f Makefile || configure -nt Makefile ]]; then
    ./configure --enable-werror >/dev/null
fi
make -j"$(nproc)" >/dev/null
echo "built: $(pwd)/.libs/mod_wsock.so"
