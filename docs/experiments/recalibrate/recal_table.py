import json, os, math, sys
E='/work/main/docs/experiments'
R='/work/exp/recal'
def diag(p):
    d=json.load(open(p)); n=d['images']
    pgd=100*d['pgd_from_x']; ap=100*d['apgd_ce']; sq=d['square_after_apgd']
    return dict(clean=100*d['clean'],fgsm=100*d['fgsm'],pgd=pgd,uni=100*d['pgd_uniform'],apgd=ap,sq=sq,both=ap-100*sq/n,flags=sum(f['flagged'] for f in d['findings']))
def shift(p):
    return {s['layer']:(s['mean_shift'],s['variance_ratio']) for s in json.load(open(p))}
def pearson(a,b):
    ma=sum(a)/len(a); mb=sum(b)/len(b)
    c=sum((x-ma)*(y-mb) for x,y in zip(a,b)); va=sum((x-ma)**2 for x in a); vb=sum((y-mb)**2 for y in b)
    return c/math.sqrt(va*vb)
for run in ['rslad','sat']:
    print(f'\n{run}\n| epoch | PGD-40 from x | APGD-CE | Square after | APGD-CE, then Square | adv: PGD-40 from x | adv: APGD-CE | adv: Square after | adv: APGD-CE, then Square | bn1 mean shift (σ) | bn1 var old/new | bn2 mean shift | bn2 var | nat: APGD-CE, then Square | nat: Square after |')
    print('|'+'---:|'*15)
    xs=[];ys=[];gain=[]
    for k in range(1,11):
        o=diag(f'{E}/{run}-micro-epochs/diagnose-ep{k}.json')
        pa=f'{R}/{run}-ep{k}-adversarial'
        if not os.path.exists(pa+'.diagnose.json'): continue
        a=diag(pa+'.diagnose.json'); s=shift(pa+'.shift.json')
        pn=f'{R}/{run}-ep{k}-natural.diagnose.json'
        n=diag(pn) if os.path.exists(pn) else None
        nat=f"{n['both']:.1f} | {n['sq']}" if n else '– | –'
        print(f"| {k} | {o['pgd']:.1f} | {o['apgd']:.1f} | {o['sq']} | **{o['both']:.1f}** | {a['pgd']:.1f} | {a['apgd']:.1f} | {a['sq']} | **{a['both']:.1f}** | {s['bn1'][0]:.3f} | {s['bn1'][1]:.3f} | {s['bn2'][0]:.3f} | {s['bn2'][1]:.3f} | {nat} |")
        if k>=3: xs.append(s['bn1'][0]); ys.append(o['pgd']-o['both']); gain.append(a['both']-o['both'])
    if len(xs)>2:
        print(f'epochs 3-10: r(bn1 shift, masking = PGD-40 - (APGD,Square)) = {pearson(xs,ys):.2f}; r(bn1 shift, gain) = {pearson(xs,gain):.2f}; gain range {min(gain):.1f}..{max(gain):.1f}')
