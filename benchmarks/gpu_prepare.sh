#!/usr/bin/env bash
# Prepare, on this machine, what benchmarks/gpu.sh needs on a lent GPU machine that cannot
# reach the internet: .mnist/ (the four MNIST .gz files from $MNIST_MIRROR) and .whl/ (wheels
# of dvc and kneed for the GPU machine's Python 3.12; its image has torch, sklearn and the rest).
#   MNIST_MIRROR=../shared/mnist bash benchmarks/gpu_prepare.sh
set -euo pipefail
mirror=${MNIST_MIRROR:?set MNIST_MIRROR to a folder holding the MNIST .gz files}
python=${PYTHON:-.venv/bin/python}
mkdir -p .mnist .whl
cp "$mirror"/*-ubyte.gz .mnist/
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 any; do
  platforms+=(--platform "$p")
done
# antlr4-python3-runtime (needed by hydra-core, needed by dvc) is published only as source:
# build its pure-Python wheel here so that the binary-only download below can resolve it.
"$python" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
download=("$python" -m pip download -q --only-binary=:all: --find-links .whl --python-version 3.12
  --implementation cp "${platforms[@]}" -d .whl)
"${download[@]}" "dvc==$(sed -n 's/^dvc==//p' requirements.txt)"
# kneed's own needs (numpy, scipy) are in the GPU machine's image.
"${download[@]}" --no-deps "kneed==$(sed -n 's/^kneed==//p' requirements.txt)"
du -sh .mnist .whl
