#!/bin/sh
# Entrypoint of the faceopt images. Before the command runs, FACEOPT_FETCH (pack names separated by
# spaces or commas, e.g. "buffalo_sc") downloads each model pack that is not already intact in
# $FACEOPT_MODELS (`faceopt models fetch` checks sizes and sha256 and skips a pack that is present).
# A failed fetch stops the container with faceopt's coded error instead of serving without models.
# `exec` hands PID 1 to the command, so SIGTERM reaches `faceopt serve` and it drains in-flight requests.
set -eu
if [ -n "${FACEOPT_FETCH:-}" ]; then
  for pack in $(printf '%s' "$FACEOPT_FETCH" | tr ',' ' '); do
    faceopt models fetch "$pack" --no-progress
  done
fi
exec "$@"
