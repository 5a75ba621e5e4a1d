#!/usr/bin/env bash
# AWQ and GPTQ on the embedded models, full WikiText-2 test set, calibrated on
# 128 x 512 tokens of public/data/calibration.txt (AWQ's usual size) instead of 32 x 256.
# Both models side by side on one GPU: tokens/s are not clean figures here.
#   source .gpu/env.sh && bash bench/runs/calibrated-128x512.sh OUTDIR
set -u
out=${1:?out dir}; mkdir -p "$out"
for m in qlab-llama-6m qlab-gpt2-6m; do
  timeout ${QLAB_RUN_LIMIT:-300} node dist-node/lab.mjs sweep --protocol gptq --model $m --methods awq,gptq --bits 4,3 --group 128 --calibration 128x512 --out "$out/calibrated-128x512-$m" >"$out/calibrated-128x512-$m.log" 2>/dev/null &
done
wait
for f in "$out"/*.log; do echo "== $f"; tail -n 12 "$f"; done
