#!/usr/bin/env bash
# One prepared GPU benchmark: training throughput, MFU and peak memory of the small and base
# presets, bf16-mixed, torch.compile off and on, 1k and 8k tokens of context (and base at 2k,
# the context of the MFU goal); then variant scoring (bench/scoring.py: 3,000 SNVs, shared windows
# against the naive path) in float32 and in bf16 autocast. Made to finish in under 6 minutes on one
# H100 or H200.
#
#   bash bench/gpu.sh                       # results in ./gpu-bench (or in $OUT when set)
#   PRESETS=tiny CONTEXTS="64 128" COMPILES=off STEPS=2 EXTRA="--workers 0" EXTRA_CONFIGS= \
#       SCORING_DEVICE=cpu SCORING_REGION=MT_human:3001-3020 bash bench/gpu.sh   # CPU smoke test
#
# Each configuration runs in its own process under `timeout`, so an out-of-memory error or a hang
# costs one row of the table, not the table. A time budget (BUDGET_S) skips what would not fit.
# Every global batch is BATCH_TOKENS tokens (batch size = BATCH_TOKENS / context).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-gpu-bench}"
PRESETS="${PRESETS:-small base}"
CONTEXTS="${CONTEXTS:-1024 8192}"
COMPILES="${COMPILES:-off on}"
EXTRA_CONFIGS="${EXTRA_CONFIGS-base:2048:on}"  # preset:context:compile, run after the grid
BATCH_TOKENS="${BATCH_TOKENS:-32768}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-3}"
PER_CONFIG_S="${PER_CONFIG_S:-100}"
BUDGET_S="${BUDGET_S:-270}"
EXTRA="${EXTRA:-}"
SCORING_DEVICE="${SCORING_DEVICE:-cuda}"
SCORING_REGION="${SCORING_REGION:-MT_human:3001-4000}"
SCORING_BATCH="${SCORING_BATCH:-256}"

mkdir -p "$OUT_DIR/logs"
RESULTS="$OUT_DIR/throughput.jsonl"
: > "$RESULTS"
export GLM_CACHE="${GLM_CACHE:-/tmp/glm-bench-cache}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/glm-inductor-cache}"

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    python -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"
} | tee "$OUT_DIR/environment.txt"

# Prepare the token store once, outside the timed runs.
python -c "
from glm.config import load_config
from glm.model.tokenizers import build_tokenizer
from glm.training.data import prepare
config = load_config('${PRESETS%% *}')
prepare('data/ecoli_K12_MG1655.fa.gz', build_tokenizer(config.data), config.data.resolved_cache_dir(), progress=False)
"

started=$SECONDS
run_config() {  # preset context compile(on|off)
    local preset=$1 context=$2 compile=$3
    local name="${preset}-${context}-compile-${compile}"
    local batch=$((BATCH_TOKENS / context))
    ((batch >= 1)) || batch=1
    if ((SECONDS - started + PER_CONFIG_S > BUDGET_S)); then
        echo "{\"preset\": \"$preset\", \"context\": $context, \"compile\": \"$compile\", \"error\": \"skipped: time budget\"}" >> "$RESULTS"
        return 0
    fi
    local flags=(--presets "$preset" --context "$context" --batch-size "$batch" --precision bf16-mixed)
    flags+=(--steps "$STEPS" --warmup "$WARMUP" --json "$RESULTS")
    [[ "$compile" == on ]] && flags+=(--compile)
    echo "== $name (batch $batch)"
    local status=0
    # shellcheck disable=SC2086  # EXTRA is a list of extra options
    timeout --kill-after=10 "$PER_CONFIG_S" python bench/throughput.py "${flags[@]}" $EXTRA \
        > "$OUT_DIR/logs/$name.log" 2>&1 || status=$?
    if ((status != 0)); then
        local reason="exit $status"
        ((status == 124 || status == 137)) && reason="timed out after ${PER_CONFIG_S}s"
        grep -q "OutOfMemoryError\|out of memory" "$OUT_DIR/logs/$name.log" && reason="out of memory"
        echo "{\"preset\": \"$preset\", \"context\": $context, \"compile\": \"$compile\", \"error\": \"$reason\"}" >> "$RESULTS"
        echo "   failed: $reason (log: $OUT_DIR/logs/$name.log)"
    fi
}

for compile in $COMPILES; do
    for preset in $PRESETS; do
        for context in $CONTEXTS; do
            run_config "$preset" "$context" "$compile"
        done
    done
done
for extra in $EXTRA_CONFIGS; do
    IFS=: read -r preset context compile <<< "$extra"
    run_config "$preset" "$context" "$compile"
done

python - "$RESULTS" << 'EOF' | tee "$OUT_DIR/table.md"
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| preset | context | batch | compile | tokens/s | bases/s | TFLOP/s | MFU | peak memory |")
print("|---|---|---|---|---|---|---|---|---|")
for row in rows:
    compile = row["compile"] if isinstance(row["compile"], str) else ("on" if row["compile"] else "off")
    if "error" in row:
        print(f"| {row['preset']} | {row['context']} | | {compile} | {row['error']} | | | | |")
        continue
    mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else "n/a"
    memory = f"{row['peak_memory_gb']:.1f} GiB" if row["peak_memory_gb"] is not None else "n/a"
    print(f"| {row['preset']} | {row['context']} | {row['batch_size']} | {compile} | {row['tokens_per_s']:,.0f} "
          f"| {row['bases_per_s']:,.0f} | {row['tflops']:.1f} | {mfu} | {memory} |")
peaks = {row["peak"] for row in rows if "peak" in row}
print("\npeak (MFU is against it): " + "; ".join(sorted(peaks)))
EOF
# Variant scoring on the device: float32 (the default) and bf16 autocast, each in its own process.
for precision in float32 bf16; do
    echo "== scoring, $precision"
    timeout --kill-after=10 "$PER_CONFIG_S" python bench/scoring.py --device "$SCORING_DEVICE" \
        --precision "$precision" --region "$SCORING_REGION" --batch-size "$SCORING_BATCH" --slices 1 \
        --json "$OUT_DIR/scoring.jsonl" > "$OUT_DIR/logs/scoring-$precision.log" 2>&1 \
        || echo "   failed: exit $? (log: $OUT_DIR/logs/scoring-$precision.log)"
    tail -n 12 "$OUT_DIR/logs/scoring-$precision.log"
done
echo "total: $((SECONDS - started)) s; results in $OUT_DIR"
