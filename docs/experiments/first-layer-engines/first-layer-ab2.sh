#!/usr/bin/env bash
# Final A/B of the first-layer engines (with the prefetch) against a3fe464; the AA job paused.
cd /work/exp
pid=$(pgrep -f 'rslad-tui-ecf04b4 eval')
kill -STOP $pid
date
for i in 1 2 3; do
  for b in a3fe464 first-layer; do
    echo "== layers $b run $i"; ./bin/rslad-tui-$b bench --layers --model small-cnn --seconds 1 2>&1 | grep -E "^\| (matmul|small-cnn conv1)"
  done
done
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824
for t in 2 1; do for i in 1 2 3; do for p in fwd fwd-grid igrad igrad-rows; do
  echo -n "threads $t: "; RAYON_NUM_THREADS=$t /work/main/kernels/target/release/examples/layer $p 300 1 32 28
done; done; done
date
kill -CONT $pid
