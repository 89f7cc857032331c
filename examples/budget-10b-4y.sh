#!/usr/bin/env bash
# What a $10B, four-year cloud commitment buys, sized like the multi-billion compute deals of
# 2025-2026: chip-hours, PFLOP/s-days and Llama 3.1 405B-sized training runs (15T tokens, 8k
# sequences, 2,048 per step, 8,192 chips per run) per offer and tier, with NVIDIA at most half
# of the spend, AWS's own chips at most 40 %, and no offer holding more than 32,768 chips at a
# time. Then the reverse: the budget 60 such runs need over the same four years; then 30 % of
# the $10B serving Llama 3 70B beside the runs.
#
# Prices are the catalog's current offers (`chipmix catalog offers`); Azure's MI300X figure is
# a third-party tracker's (April 2026). Run from the repository root.
set -euo pipefail
CHIPMIX=${CHIPMIX:-.venv/bin/chipmix}
OFFERS=aws-p5.48xlarge-us-east-1-2025-06,aws-p6-b200.48xlarge-us-east-1-2025-05,\
aws-trn2.48xlarge-us-east-2-2024-12,gcp-tpu-v5p-us-central1-2025-01,\
gcp-tpu-v6e-us-east-2024-12,azure-nd-mi300x-v5-2026-04,azure-nd-h100-v5-eastus-2024-01
RUN=(--model llama3.1-405b --tokens 15e12 --seq-len 8192 --global-batch 2048 --chips 8192)

"$CHIPMIX" budget --usd 10e9 --years 4 --offers "$OFFERS" --cap nvidia=50%,aws=40% \
    --max-chips 32768 "${RUN[@]}" "$@"
"$CHIPMIX" budget --runs 60 --years 4 --offers "$OFFERS" --cap nvidia=50%,aws=40% \
    --max-chips 32768 "${RUN[@]}" "$@"
# The same $10B with 30 % of it serving Llama 3 70B (2,000-token prompts, 300-token answers)
# at p99 TTFT <= 2 s and TPOT <= 100 ms: served output tokens a day beside the runs.
"$CHIPMIX" budget --usd 10e9 --years 4 --offers "$OFFERS" --cap nvidia=50%,aws=40% \
    --max-chips 32768 "${RUN[@]}" --serve-model llama3-70b --ttft-p99-ms 2000 \
    --tpot-p99-ms 100 --serve-share 0.3 "$@"
