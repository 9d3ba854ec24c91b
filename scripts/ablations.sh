#!/usr/bin/env bash
# The paper's Table-3 ablations from one run setup: the same warm start, the same config, one reward
# component switched off at a time. Each ablation is an ordinary `partner-train rl` run (so it
# checkpoints and resumes like any other; re-running this script continues where it stopped), then
# `partner-rewrite` on the EPITOME test split and one `partner-eval rewrites` table over all of them.
# The rewrites are the raw policies' (the sentence guard of partner/guards.py is off), so the table
# compares what training produced; partner-eval still reports how often each would have been caught.
#
#   scripts/ablations.sh [BASE_RUN_DIR] [CONFIG]
#
# BASE_RUN_DIR (default runs/default) must hold a complete warm start (<BASE>/warmstart) and the full
# RL run (<BASE>/rl); the ablations go to <BASE>-no-coherence and <BASE>-no-mi, sharing that warm
# start through a symlink. Rewrites and the report go to <BASE>-ablations/.
# Cost on a 2-core CPU with configs/default.yaml: about 50 min of RL per ablation, 4 min of rewriting.
set -euo pipefail
BASE=${1:-runs/default}
CONFIG=${2:-configs/default.yaml}
OUT=$BASE-ablations
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RAW=(--set rewrite.max_seeker_copy=0 --set rewrite.max_response_copy=0 --set rewrite.max_repetition=0 --set rewrite.candidates=1)

for f in "$BASE/warmstart/.complete" "$BASE/rl/.complete"; do
  [[ -f $f ]] || { echo "ablations: $f is missing; run partner-train --config $CONFIG --set run_dir=$BASE first" >&2; exit 2; }
done
mkdir -p "$OUT"
# exit status 4: the run finished with error records (bad input lines); the table counts them
rewrite() { partner-rewrite "$@" || [[ $? -eq 4 ]]; }

declare -A SETTING=([no-coherence]=rewards.w_coherence=0 [no-mi]=rewards.w_mi=0)
for name in no-coherence no-mi; do
  run=$BASE-$name
  mkdir -p "$run"
  ln -sfn "$(realpath "$BASE/warmstart")" "$run/warmstart"
  partner-train rl --config "$CONFIG" --set run_dir="$run" --set "${SETTING[$name]}"
done

[[ -f $OUT/epitome-test.jsonl ]] || python -m partner.evaluation.rewrites export epitome-test "$OUT/epitome-test.jsonl"
rewrite "$OUT/epitome-test.jsonl" -o "$OUT/epitome-test.identity.jsonl" --method identity
rewrite "$OUT/epitome-test.jsonl" -o "$OUT/epitome-test.warmstart.jsonl" --method warmstart --model "$BASE/warmstart/policy" "${RAW[@]}"
rewrite "$OUT/epitome-test.jsonl" -o "$OUT/epitome-test.partner.jsonl" --method partner --model "$BASE/rl/policy" "${RAW[@]}"
for name in no-coherence no-mi; do
  rewrite "$OUT/epitome-test.jsonl" -o "$OUT/epitome-test.$name.jsonl" --method partner --model "$BASE-$name/rl/policy" "${RAW[@]}"
done
partner-eval rewrites "$OUT"/epitome-test.{identity,warmstart,partner,no-coherence,no-mi}.jsonl \
  --against "$OUT/epitome-test.partner.jsonl" --out "$OUT/report"
