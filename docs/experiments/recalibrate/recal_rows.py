import json
E='/work/main/docs/experiments'; R='/work/exp/recal'
def d(p):
    x=json.load(open(p)); return x, 100*x['apgd_ce']-100*x['square_after_apgd']/x['images']
def sh(p): return {s['layer']:s for s in json.load(open(p))}
rows=[]
for k in range(1,11):
    ro,rb=d(f'{E}/rslad-micro-epochs/diagnose-ep{k}.json')
    ra,rab=d(f'{R}/rslad-ep{k}-adversarial.diagnose.json')
    rn,rnb=d(f'{R}/rslad-ep{k}-natural.diagnose.json')
    so,sb=d(f'{E}/sat-micro-epochs/diagnose-ep{k}.json')
    sa,sab=d(f'{R}/sat-ep{k}-adversarial.diagnose.json')
    s1=sh(f'{R}/rslad-ep{k}-adversarial.shift.json')['bn1']; t1=sh(f'{R}/sat-ep{k}-adversarial.shift.json')['bn1']
    rows.append(f"| {k} | {rb:.1f} | **{rab:.1f}** | {ro['square_after_apgd']} → {ra['square_after_apgd']} | {s1['mean_shift']:.3f} | {s1['variance_ratio']:.3f} | {rnb:.1f} | {sb:.1f} | {sab:.1f} | {t1['mean_shift']:.3f} |")
print('\n'.join(rows))
