//! Ward linkage (SciPy's `linkage(y, method='ward')` on a condensed distance matrix) and the
//! readout-vector distance D_ij = (1 − cos(w_i, w_j)) / 2 of the reference notebook.

/// Condensed (SciPy `squareform` order) distances (1 − cos(w_i, w_j))/2 between the rows of
/// `w` ([c, d]).
pub fn readout_distances(w: &[f64], c: usize, d: usize) -> Vec<f64> {
    let norm: Vec<f64> = (0..c)
        .map(|k| {
            w[k * d..(k + 1) * d]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let mut out = Vec::with_capacity(c * c.saturating_sub(1) / 2);
    for i in 0..c {
        for j in i + 1..c {
            let dot: f64 = (0..d).map(|q| w[i * d + q] * w[j * d + q]).sum();
            out.push(((1.0 - dot / (norm[i] * norm[j])) / 2.0).max(0.0));
        }
    }
    out
}

/// Ward linkage of `n` observations from condensed distances. Returns SciPy's `Z`: rows
/// `[a, b, distance, size]`, clusters numbered as SciPy does (observations 0..n, the cluster
/// formed in row i is n + i; a < b), rows in order of increasing distance.
pub fn ward(condensed: &[f64], n: usize) -> Vec<[f64; 4]> {
    if n < 2 {
        return Vec::new();
    }
    let idx = |i: usize, j: usize| {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        n * i - i * (i + 1) / 2 + (j - i - 1)
    };
    let mut dist: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { 0.0 } else { condensed[idx(i, j)] })
                .collect()
        })
        .collect();
    let mut size = vec![1usize; n];
    let mut active: Vec<bool> = vec![true; n];
    // Merges as (slot a, slot b, distance); slots are reused for the merged cluster.
    let mut merges: Vec<(usize, usize, f64, usize)> = Vec::with_capacity(n - 1);
    for _ in 0..n - 1 {
        let mut best = (usize::MAX, usize::MAX, f64::INFINITY);
        for i in 0..n {
            if !active[i] {
                continue;
            }
            for j in i + 1..n {
                if active[j] && dist[i][j] < best.2 {
                    best = (i, j, dist[i][j]);
                }
            }
        }
        let (s, t, dst) = best;
        let (ns, nt) = (size[s] as f64, size[t] as f64);
        for v in 0..n {
            if !active[v] || v == s || v == t {
                continue;
            }
            let nv = size[v] as f64;
            let d2 = ((nv + ns) * dist[v][s].powi(2) + (nv + nt) * dist[v][t].powi(2)
                - nv * dst.powi(2))
                / (nv + ns + nt);
            let dnew = d2.max(0.0).sqrt();
            dist[v][s] = dnew;
            dist[s][v] = dnew;
        }
        size[s] += size[t];
        active[t] = false;
        merges.push((s, t, dst, size[s]));
    }
    // Sort by distance (stable) and relabel as SciPy: each slot's current cluster id.
    let mut order: Vec<usize> = (0..merges.len()).collect();
    order.sort_by(|&a, &b| merges[a].2.total_cmp(&merges[b].2));
    // Replay in sorted order with a union-find over observations.
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    // Representative observation of each slot at each merge: slot ids are observation ids.
    let mut z = Vec::with_capacity(n - 1);
    for (row, &m) in order.iter().enumerate() {
        let (s, t, dst, sz) = merges[m];
        let (a, b) = (find(&mut parent, s), find(&mut parent, t));
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let new = n + row;
        parent[a] = new;
        parent[b] = new;
        z.push([a as f64, b as f64, dst, sz as f64]);
    }
    z
}

/// Leaf order of a dendrogram (left to right) from `Z`.
pub fn leaf_order(z: &[[f64; 4]], n: usize) -> Vec<usize> {
    if z.is_empty() {
        return (0..n).collect();
    }
    let mut out = Vec::with_capacity(n);
    let mut stack = vec![n + z.len() - 1];
    while let Some(node) = stack.pop() {
        if node < n {
            out.push(node);
        } else {
            let r = z[node - n];
            stack.push(r[1] as usize);
            stack.push(r[0] as usize);
        }
    }
    out
}
