#!/usr/bin/env bash
# Full WikiText-2 test set on the GPU machine for the embedded models (issues 7 and 8):
# calibrated weight methods at W4/W3 g128, mixed precision / W8A8 / W4A4 against their
# weight-only peers, and KV-cache formats. Sweeps of different models run side by side
# (separate processes on one GPU): perplexity, KL and memory are unaffected, tokens/s are
# not clean figures in these runs.
#   source .gpu/env.sh && bash bench/runs/embedded-full.sh OUTDIR
set -u
out=${1:?out dir}; mkdir -p "$out"
L="timeout ${QLAB_RUN_LIMIT:-500} node dist-node/lab.mjs sweep --protocol gptq"
for m in qlab-llama-6m qlab-gpt2-6m; do
  $L --model $m --methods none,rtn,awq,gptq,hqq --bits 4,3 --group 128 --out "$out/calibrated-$m" >"$out/calibrated-$m.log" 2>/dev/null &
  $L --model $m --methods none,rtn,gptq,mixllm,smoothquant,atom --schemes w8-row,w4-g128 --bits 4 --group 128 --mixllm-base rtn,gptq --out "$out/act-$m" >"$out/act-$m.log" 2>/dev/null &
  $L --model $m --methods none,rtn --schemes w4-g128 --kv f32,8,4 --out "$out/kv-$m" >"$out/kv-$m.log" 2>/dev/null &
done
wait
for f in "$out"/*.log; do echo "== $f"; tail -n 30 "$f"; done
