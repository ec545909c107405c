#!/bin/sh
# Fuzz each target for a bounded time (default 60 s each; FUZZ_SECONDS=N to change it).
# Installs atheris into .venv when it is missing. Not part of `make test`: `make fuzz`.
# New inputs that reach new coverage go to a scratch directory, never into the committed
# seed corpus; a crash leaves its input as fuzz/crash-<hash> and fails this script.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${*:-"cpio smartos_frame"}

if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "installing atheris into .venv"
    "$PY" -m pip install --quiet atheris
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
status=0
for target in $TARGETS; do
    echo "== fuzz_$target: ${SECONDS_EACH} s"
    mkdir -p "$scratch/$target"
    PYTHONPATH=. "$PY" "fuzz/fuzz_$target.py" "$scratch/$target" "fuzz/corpus/$target" \
        -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix=fuzz/ -print_final_stats=1 || status=1
done
exit $status
