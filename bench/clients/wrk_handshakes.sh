#!/usr/bin/env bash
# wrk: as wrk_get_load.sh, with "Connection: close" on every request, so
# each is on a new connection (the server closes too). It does not verify
# certificates.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
wrk_run -H 'Connection: close'
