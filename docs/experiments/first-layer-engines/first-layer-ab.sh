#!/usr/bin/env bash
# A/B of the first-layer engines (uncommitted on a3fe464) against a3fe464, alternated; the AA job paused.
cd /work/exp
pid=$(pgrep -f 'rslad-tui-ecf04b4 eval')
kill -STOP $pid
date
for i in 1 2 3; do
  for b in a3fe464 first-layer; do
    echo "== layers $b run $i"; ./bin/rslad-tui-$b bench --layers --model small-cnn --seconds 1 2>&1 | grep -E "^\| (matmul|small-cnn)"
  done
done
for i in 1 2; do
  for b in a3fe464 first-layer; do
    echo "== pgd-step $b run $i"; ./bin/rslad-tui-$b bench --only pgd-step --seconds 3 2>&1 | grep -E "^\| "
    echo "== autoattack $b run $i"; ./bin/rslad-tui-$b bench --only autoattack --autoattack-images 20 2>&1 | grep -E "^\| "
  done
done
date
kill -CONT $pid
