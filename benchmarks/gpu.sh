#!/usr/bin/env bash
# Issue #3's GPU measurements as one prepared run on a lent GPU machine (results: README).
# Run benchmarks/gpu_prepare.sh here first; carry .mnist and .whl with the run. Each step's
# log goes to $OUT (or gpu-out/); the summary is printed last. Name steps to run only those.
#   bash benchmarks/gpu.sh [tests] [study] [epoch] [sweep]
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1 MNIST_MIRROR=$PWD/.mnist
py=python3

wanted=" ${*:-install download tests study epoch sweep} install download "
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  [[ $wanted == *" $name "* ]] || return 0
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "$name: exit $? after $((SECONDS - start)) s" | tee -a "$out/steps.log"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nproc
  $py -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
  command -v git || echo "no git (benchmarks.study --copy needs none)"
} >"$out/env.log" 2>&1
step install 120 $py -m pip install --no-index --find-links .whl "dvc==$(sed -n 's/^dvc==//p' requirements.txt)" \
  "kneed==$(sed -n 's/^kneed==//p' requirements.txt)"
step download 60 $py -m stages.download
# Correctness first: a replayed CUDA graph must give the eager result bit for bit.
step tests 120 $py -m pytest -q -p no:cacheprovider tests/test_train.py
step study 300 $py -m benchmarks.study --copy
step epoch 120 $py -m benchmarks.epoch --device cuda --rounds 3
step sweep 90 $py -m benchmarks.sweep --device cuda --epochs 2 --bf16

cat "$out/env.log"
tail -n 3 "$out/install.log"
for name in tests study epoch sweep; do
  [[ -f $out/$name.log ]] || continue
  echo "== $name"
  grep -E '^\||GEMM|bf16 vs|device|rounds|study from|passed|failed|rror' "$out/$name.log" | tail -n 40
done
cat "$out/steps.log"
