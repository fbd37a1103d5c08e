#!/usr/bin/env bash
# GPU readiness in one run (under 5 minutes on one GPU): fused inference and training
# GPU vs CPU (exits non-zero on a probability mismatch above 1e-4), the re-labelling job
# in its GPU layout (actor pool holding the GPU), and the Serve benchmark, whose replica
# takes half a GPU when the cluster has one (raydisc.serving: gpu_fraction default).
#   bash bench/gpu_check.sh            from the repository root, with the project installed
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" bench/gpu_check.py
"$PY" bench/reprocess.py --sizes 200 --actor-pool --num-cpus "$(nproc)" --workdir /tmp/raydisc-gpu-reprocess
"$PY" bench/serve.py --configs batched-1 --requests 200 --duration-s 20
