#!/usr/bin/env bash
# Builds the mgrflags reference once (tests/go-reference.sh) and prints the binary's path as the last
# stdout line.
exec "$(dirname "${BASH_SOURCE[0]}")/../go-reference.sh" mgrflags
