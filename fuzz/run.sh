#!/bin/sh
# Fuzzes every target (or the ones named as arguments) for FUZZ_SECONDS each.
#
#   fuzz/run.sh                         all targets, 60 s each, no sanitizer (stable Rust)
#   FUZZ_SECONDS=600 fuzz/run.sh recv_buffer
#   ASAN=1 fuzz/run.sh                  with AddressSanitizer (RUSTC_BOOTSTRAP=1 on stable)
#   FUZZ_ARGS='-fork=2 -ignore_crashes=1' fuzz/run.sh   keep going past crashes
#
# New inputs go to fuzz/corpus/<target>/ (git-ignored); fuzz/seeds/<target>/ is
# read as a second, read-only corpus, so the committed seeds stay as they are.
# Crashes land in fuzz/artifacts/<target>/: copy each one into
# fuzz/seeds/<target>/crash-<what> so `cargo test -p coevent-engine --test
# fuzz_seeds` replays it. Exits 1 if any target crashed.
set -u
cd "$(dirname "$0")/.." || exit 2

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ASAN=${ASAN:-0}
FUZZ_ARGS=${FUZZ_ARGS:-}
TARGETS=${*:-receive_pattern recv_buffer dns_message until regex model}

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }

failed=""
for t in $TARGETS; do
    [ -d "fuzz/seeds/$t" ] || { echo "no fuzz/seeds/$t" >&2; exit 2; }
    mkdir -p "fuzz/corpus/$t"
    echo "=== $t: ${FUZZ_SECONDS}s$( [ "$ASAN" = 1 ] && echo ', ASan')"
    # -timeout: one input taking 10 s is a hang worth reporting.
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
    if [ "$ASAN" = 1 ]; then
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
            -max_total_time="$FUZZ_SECONDS" -timeout=10 $FUZZ_ARGS
    else
        cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
            -max_total_time="$FUZZ_SECONDS" -timeout=10 $FUZZ_ARGS
    fi || failed="$failed $t"
done

if [ -n "$failed" ]; then
    echo "crashed:$failed (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "no crash in:" $TARGETS
