# Derive Winograd F(m, r) correlation matrices (A^T, G, B^T) for given finite points plus
# infinity, and measure their float32 error on random 1-D tiles. Generated F4K2 in
# crates/ventral-engine/src/winograd.rs (points 0, 1, -1, 2). Needs sympy: python3 scripts/winograd_points.py

import sympy as sp, itertools, random
def build(points, m, r):
    a = m + r - 1
    fin = points
    assert len(fin) == a - 1
    A = sp.zeros(a, m); G = sp.zeros(a, r)
    for k, p in enumerate(fin):
        f = sp.prod([p - q for q in fin if q != p])
        for i in range(m): A[k, i] = p**i
        for j in range(r): G[k, j] = p**j / f
    A[a-1, m-1] = 1; G[a-1, r-1] = 1
    Bt = sp.Matrix(a, a, lambda i, j: sp.Symbol(f'b{i}_{j}'))
    eqs = []
    for i in range(m):
        for j in range(r):
            for l in range(a):
                eqs.append(sum(A[k, i]*G[k, j]*Bt[k, l] for k in range(a)) - (1 if l == i + j else 0))
    sol = sp.solve(eqs, list(Bt))
    Bt = Bt.subs(sol)
    return A.T, G, Bt
for pts in [[0,1,-1,2],[0,1,-1,-2],[0,1,-1,sp.Rational(1,2)],[0,1,-1,-sp.Rational(1,2)]]:
    At, G, Bt = build(pts, 4, 2)
    print(pts); print('At', At.tolist()); print('G', G.tolist()); print('Bt', Bt.tolist())
    # float32 error test
    import struct
    def f32(x): return struct.unpack('f', struct.pack('f', float(x)))[0]
    err=0; ref=0
    rnd = random.Random(1)
    for trial in range(300):
        d=[rnd.uniform(-1,1) for _ in range(5)]; g=[rnd.uniform(-1,1) for _ in range(2)]
        y=[d[i]*g[0]+d[i+1]*g[1] for i in range(4)]
        V=[f32(sum(f32(float(Bt[k,l])*d[l]) for l in range(5))) for k in range(5)]
        U=[f32(sum(float(G[k,j])*g[j] for j in range(2))) for k in range(5)]
        M=[f32(U[k]*V[k]) for k in range(5)]
        Y=[f32(sum(float(At[i,k])*M[k] for k in range(5))) for i in range(4)]
        err+=sum((Y[i]-y[i])**2 for i in range(4)); ref+=sum(v*v for v in y)
    print('rel err', (err/ref)**0.5)
