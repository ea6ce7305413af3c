#!/usr/bin/env bash
# After recal.sh: the 10-epoch bn-stats-adversarial RSLAD student recalibrated and diagnosed, then
# standard AutoAttack on the first 1,000 test images (resumable journals) of the key checkpoints.
cd /work/exp
B=./bin/rslad-tui-recal
E=/work/main/docs/experiments
while [ ! -f recal/done ]; do sleep 20; done
T=$(pgrep -f 'rslad-tui-ecf04b4 eval'); [ -n "$T" ] && kill -STOP $T
src=runs/compare-mnist-10ep-bnadv/rslad
out=recal/bnadv10-ep10-adversarial
[ -f $out.diagnose.json ] || { $B recalibrate --data data --checkpoint $src --out $out --overwrite --json > $out.shift.json 2> $out.err && \
  $B diagnose --data data --checkpoint $out --n 500 --json > $out.diagnose.json 2>> $out.err; }
[ -f recal/bnadv10-ep10.diagnose.json ] || $B diagnose --data data --checkpoint $src --n 500 --json > recal/bnadv10-ep10.diagnose.json 2>> recal/bnadv10-ep10.err
aa() { # name checkpoint
  [ -f recal/aa-$1.json ] && return
  $B eval --dataset mnist --data data --checkpoint $2 --attacks autoattack --n 1000 --block 100 \
     --resume recal/aa-$1.journal.ron --json > recal/aa-$1.tmp 2>> recal/aa-$1.err && mv recal/aa-$1.tmp recal/aa-$1.json
}
aa rslad-ep10-adversarial recal/rslad-ep10-adversarial
aa rslad-ep10 $E/rslad-micro-epochs/ep10
aa sat-ep10-adversarial recal/sat-ep10-adversarial
aa bnadv10-ep10-adversarial recal/bnadv10-ep10-adversarial
aa rslad-ep6-adversarial recal/rslad-ep6-adversarial
aa sat-ep10 $E/sat-micro-epochs/ep10
T=$(pgrep -f 'rslad-tui-ecf04b4 eval'); [ -n "$T" ] && kill -CONT $T
touch recal/aa-done
