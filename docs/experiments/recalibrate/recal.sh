#!/usr/bin/env bash
# Per-epoch checkpoints of RSLAD and SAT (micro-cnn, 10 epochs): statistics re-estimated, then diagnosed.
cd /work/exp
B=./bin/rslad-tui-recal
E=/work/main/docs/experiments
for run in rslad sat; do
  for k in 1 2 3 4 5 6 7 8 9 10; do
    for src in adversarial natural; do
      [ $run = sat ] && [ $src = natural ] && continue
      out=recal/$run-ep$k-$src
      [ -f $out.diagnose.json ] && continue
      $B recalibrate --data data --checkpoint $E/$run-micro-epochs/ep$k --from $src --out $out --overwrite --json > $out.shift.json 2> $out.err || exit 1
      $B diagnose --data data --checkpoint $out --n 500 --json > $out.diagnose.json 2>> $out.err || exit 1
    done
  done
done
touch recal/done
