#!/usr/bin/env bash
# GPU-machine runs at realistic sizes (issues 7, 9, 11):
#   0. the tiny transformers models and their PyTorch logits (tools/fixtures/tiny_models.py);
#   1. a random-weight model of Llama-3.2-1B's config through the Hub path
#      (write, serve on 127.0.0.1, download, plan, load+quantize on load to W4 g128,
#      4 windows of 512, decode), kept on disk for step 3;
#   2. the same for Qwen2.5-0.5B's config;
#   3. the CLI sweep on the kept 1B folder: f32, RTN, AWQ, GPTQ at W4 g128 with
#      the default calibration for such a model (128 x 512 tokens), 4 windows
#      (no KL: random weights). It runs with the GPU to itself.
# With --with-embedded, bench/runs/calibrated-128x512.sh runs beside steps 1-2
# (small models, mostly CPU-side work; step 3 waits for it).
# Steps end at a shared deadline so the caller's tarball is always written.
#   source .gpu/env.sh && bash bench/runs/realistic.sh OUTDIR SECONDS [--with-embedded]
set -u
out=${1:?out dir}; budget=${2:-540}; mkdir -p "$out"
end=$(( $(date +%s) + budget ))
left() { local l=$(( end - $(date +%s) )); [ $l -gt $1 ] && l=$1; [ $l -lt 5 ] && l=5; echo $l; }
step() { local name=$1 limit=$2; shift 2; local t0=$(date +%s); timeout $(left $limit) "$@"; local rc=$?; echo "$name: $(( $(date +%s) - t0 )) s, exit $rc"; }
if [ "${3:-}" = "--with-embedded" ]; then QLAB_RUN_LIMIT=$(left 300) bash bench/runs/calibrated-128x512.sh "$out" > "$out/embedded.txt" 2>&1 & fi
step "0 tiny transformers models" 60 python3 tools/fixtures/tiny_models.py --out "$out/tiny" >"$out/tiny.log" 2>&1
step "2 hub qwen2.5-0.5b" 100 node dist-node/hub-model.mjs --config qwen2.5-0.5b --method w4-g128 --slice 4 --json "$out/hub-qwen2.5-0.5b.json" >"$out/hub-qwen2.5-0.5b.log" 2>&1
step "1 hub llama-3.2-1b" 150 node dist-node/hub-model.mjs --config llama-3.2-1b --method w4-g128 --slice 4 --keep /tmp/m1b --json "$out/hub-llama-3.2-1b.json" >"$out/hub-llama-3.2-1b.log" 2>&1
wait
step "3 sweep llama-3.2-1b shapes" 420 node dist-node/lab.mjs sweep --model /tmp/m1b/model --methods none,rtn,awq,gptq --bits 4 --group 128 --slice 4 --no-kl --out "$out/sweep-llama-3.2-1b-shapes" >"$out/sweep-llama-3.2-1b-shapes.log" 2>"$out/sweep.err"
tr '\r' '\n' < "$out/sweep.err" | grep -v '^\s*$' | awk '!seen[$0]++' | tail -n 600 > "$out/sweep-llama-3.2-1b-shapes.progress"; rm -f "$out/sweep.err"
for f in "$out"/*.log "$out/embedded.txt"; do [ -f "$f" ] && { echo "== $f"; tail -n 25 "$f"; }; done
