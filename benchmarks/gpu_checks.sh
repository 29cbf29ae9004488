#!/usr/bin/env bash
# The checks that need a GPU, in one run (about 7 minutes on an H100/H200 machine): the CUDA tests,
# then the GPU benchmarks whose figures the README gives. Run from the repository root with the
# packages of pyproject.toml importable and ../shared/data/video present; output also under $OUT
# (or ./gpu-out). Arguments pick parts (tests lof chronos video cameras cameras-long); none: all but
# the last. cameras-long: 100 cameras x 300 clips, LOF memories of up to 299 of their 500 clips, both
# decoding modes, about 6 minutes.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
cores=$(nproc)
parts=${*:-tests lof chronos video cameras}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
echo "cpu cores: $cores" | tee -a "$out/gpu.txt"
for part in $parts; do
    case $part in
    tests) timeout 240 $py -m pytest -q -p no:cacheprovider -o addopts="" --timeout 200 -k "cuda or gpu" \
               tests/test_cuda.py tests/test_lof.py tests/test_self_similarity.py tests/test_video_encoders.py 2>&1 \
               | tee "$out/tests.log" | tail -30 ;;
    lof) timeout 90 $py benchmarks/lof_speed.py --threads 1 "$cores" 2>&1 | tee "$out/lof_speed.md" ;;
    chronos) timeout 180 $py benchmarks/chronos_speed.py --device cuda --threads "$cores" --batches 256 1024 4096 2>&1 \
                 | grep -v "model shards" | tee "$out/chronos_speed.md" ;;
    video) timeout 60 $py benchmarks/video_decode.py --device cuda --batch 64 256 512 2>&1 | tee "$out/video_decode.md" ;;
    cameras) timeout 300 $py benchmarks/camera_capacity.py --device cuda --decoders "$cores" --cameras 500 --rounds 4 \
                 2>&1 | tee "$out/camera_capacity.md" ;;
    cameras-long) timeout 560 $py benchmarks/camera_capacity.py --device cuda --decoders "$cores" --cameras 100 \
                      --rounds 300 --runs 1 --encoder efficientnet 2>&1 | tee "$out/camera_capacity_long.md" ;;
    *) echo "unknown part: $part (known: tests lof chronos video cameras cameras-long)"; exit 2 ;;
    esac
done
