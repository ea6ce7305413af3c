#!/usr/bin/env bash
# The 3-epoch baseline (RSLAD, reference batch-norm statistics) of docs/results.md's seed table,
# trained again for seeds 0-3, then recalibrated from adversarial training images; standard
# AutoAttack on the first 1,000 test images of both (resumable journals).
cd /work/exp
B=./bin/rslad-tui-recal
while [ ! -f recal/aa-done ]; do sleep 20; done
T=$(pgrep -f 'rslad-tui-ecf04b4 eval'); [ -n "$T" ] && { kill -CONT $T; renice -n 19 -p $T; }
C="--dataset mnist --data data --model micro-cnn --epochs 3 --steps 10 --step-size 0.05 --eps-warmup 1 --optimizer adam --lr 0.002 --eval-n 1000 --eval-steps 10"
aa() { # name checkpoint
  [ -f recal/aa-$1.json ] && return
  $B eval --dataset mnist --data data --checkpoint $2 --attacks autoattack --n 1000 --block 100 \
     --resume recal/aa-$1.journal.ron --json > recal/aa-$1.tmp 2>> recal/aa-$1.err && mv recal/aa-$1.tmp recal/aa-$1.json
}
for s in 1 2 0 3; do
  ck=recal/seeds/rslad-seed$s
  mkdir -p recal/seeds
  [ -f $ck.ron ] || $B train $C --method rslad --teacher embedded-sat --seed $s --out $ck > $ck.log 2>&1 || exit 1
  [ -f $ck-adversarial.ron ] || $B recalibrate --data data --checkpoint $ck --out $ck-adversarial --json > $ck-adversarial.shift.json 2> $ck-adversarial.err || exit 1
  aa seed$s $ck
  aa seed$s-adversarial $ck-adversarial
done
touch recal/seeds-done
