#!/usr/bin/env bash
# The GPU check, on the lent GPU machine (no Rust toolchain, no internet): unpacks the bundle that
# scripts/gpu-check.sh built (carry `gpu-check`), then, each step time-boxed so that the whole fits
# one 10-minute command, runs
#   1. `xtask info` (the backend and a product on the GPU) and nvidia-smi;
#   2. the backend conformance tests (model parity fixtures, training a batch, demo training);
#   3. the demo pipeline (train + eval, TIGER and RASTP);
#   4. Beauty's data → embed (collaborative: the MiniLM weights are too big to carry) → sids;
#   5. `bench train-step` and `bench generate` on Beauty;
#   6. a time-boxed `paper`-profile Beauty pipeline (both variants) in the time that is left;
# and writes every log, a summary (summary.md) and the Beauty run's metrics and logs to $OUT.
#
#   OUT=/some/dir scripts/gpu-device.sh            # GPU_CHECK_SECONDS (default 560) is the budget
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
: "${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
budget=${GPU_CHECK_SECONDS:-560}
start=$(date +%s)
bundle=gpu-check/bundle.tar.gz
[ -f "$bundle" ] || { echo "error: $bundle missing: run scripts/gpu-check.sh and carry gpu-check" | tee "$OUT/summary.md" >&2; exit 1; }
work=${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/rastp-gpu-check}
rm -rf "$work" && mkdir -p "$work"
tar -xzf "$bundle" -C "$work"
bin=$work/bin
export RASTP_DATASETS=$work/datasets RASTP_RUNS=$work/runs
summary=$OUT/summary.md
{
  echo "# GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  sed 's/^/    /' "$work/build.txt"
  echo
  echo "| step | status | seconds | command |"
  echo "|---|---|---|---|"
} >"$summary"

left() { echo $((budget - ($(date +%s) - start))); }
# step NAME SECONDS COMMAND…: runs COMMAND with at most SECONDS (and never past the budget),
# output in $OUT/NAME.log, a row in the summary.
step() {
  local name=$1 limit=$2 rest
  shift 2
  rest=$(left)
  [ "$limit" -gt "$rest" ] && limit=$rest
  if [ "$limit" -lt 15 ]; then
    echo "| $name | skipped: budget spent | – | \`$*\` |" >>"$summary"
    return 1
  fi
  local t0 rc status
  t0=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status="timed out after ${limit} s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '| %s | %s | %s | `%s` |\n' "$name" "$status" \
    "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')" "$*" >>"$summary"
  return $rc
}

command -v nvidia-smi >/dev/null && nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
step info 90 "$bin/xtask" info || { echo "the backend does not start; see $OUT/info.log" >&2; }
step conformance 150 "$bin/conformance" --test-threads=4
step demo 90 "$bin/xtask" pipeline demo --set embedding.source=cf
cf=(--set embedding.source=cf)
if [ -d "$RASTP_DATASETS/amazon/beauty" ]; then
  step beauty-sids 60 "$bin/xtask" pipeline beauty --until sids "${cf[@]}"
  step bench-train-step 100 "$bin/xtask" bench train-step beauty --warmup 2 --steps 5
  step bench-generate 60 "$bin/xtask" bench generate beauty --users 1024
  # The rest of the budget: two trainings (none, rastp) of `minutes` each, evaluation on 5,000
  # test users, 60 s kept for evaluation and reporting per variant.
  rest=$(($(left) - 20))
  minutes=$(awk -v r="$rest" 'BEGIN { m = (r - 120) / 2 / 60; if (m < 0.25) m = 0.25; printf "%.2f", m }')
  step beauty-paper "$rest" "$bin/xtask" pipeline beauty --profile paper "${cf[@]}" \
    --set "train.max_minutes=$minutes" --set eval.test_users=5000
  mkdir -p "$OUT/beauty"
  for f in report.md eval/none/seed-42/metrics.json eval/rastp/seed-42/metrics.json \
    train/none/seed-42/summary.json train/rastp/seed-42/summary.json \
    train/none/seed-42/train_log.csv train/rastp/seed-42/train_log.csv; do
    [ -f "$RASTP_RUNS/beauty/$f" ] && cp "$RASTP_RUNS/beauty/$f" "$OUT/beauty/${f//\//_}"
  done
else
  echo "| beauty | skipped: the bundle has no Beauty dataset | – | – |" >>"$summary"
fi
echo >>"$summary"
echo "total $(( $(date +%s) - start )) s of a ${budget} s budget; logs beside this file" >>"$summary"
cat "$summary"
