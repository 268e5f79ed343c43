//! Cross-validation splits over stimuli, from named random streams (one root seed).
//!
//! Rules follow Brain-Score's defaults (`StratifiedShuffleSplit`/`ShuffleSplit`, 10 splits,
//! train fraction 0.9, stratified by `object_name`): per class the training count is the
//! class's share of `floor(train_frac · n)` rounded by largest remainder, so every class is in
//! both sets when it has at least two members. The random draws come from ChaCha streams, not
//! NumPy's generator, so the exact index sets differ from scikit-learn's for the same seed.

use rand::Rng;
use ventral_core::rng::stream;

/// One train/test partition (sorted indices).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Fisher–Yates shuffle from a u64 source.
pub fn shuffle<T>(v: &mut [T], rng: &mut impl Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// `n_splits` random partitions of `0..n` with `floor(train_frac · n)` training items
/// (at least 1 in each set), stratified by `groups` when given.
pub fn shuffle_splits(
    n: usize,
    groups: Option<&[usize]>,
    n_splits: usize,
    train_frac: f64,
    seed: u64,
    name: &str,
) -> Vec<Split> {
    let n_train = ((train_frac * n as f64).floor() as usize).clamp(1, n.saturating_sub(1).max(1));
    (0..n_splits)
        .map(|s| {
            let mut rng = stream(seed, name, &[s as u64]);
            let mut train = Vec::with_capacity(n_train);
            let mut test = Vec::with_capacity(n - n_train);
            match groups {
                None => {
                    let mut idx: Vec<usize> = (0..n).collect();
                    shuffle(&mut idx, &mut rng);
                    train.extend_from_slice(&idx[..n_train]);
                    test.extend_from_slice(&idx[n_train..]);
                }
                Some(g) => {
                    let ngroups = g.iter().copied().max().map_or(0, |m| m + 1);
                    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
                    for (i, &gi) in g.iter().enumerate() {
                        members[gi].push(i);
                    }
                    // Largest-remainder allocation of n_train over groups.
                    let exact: Vec<f64> = members
                        .iter()
                        .map(|m| m.len() as f64 * n_train as f64 / n as f64)
                        .collect();
                    let mut alloc: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
                    let mut left = n_train - alloc.iter().sum::<usize>();
                    let mut order: Vec<usize> = (0..ngroups).collect();
                    order.sort_by(|&a, &b| {
                        let ra = exact[a] - exact[a].floor();
                        let rb = exact[b] - exact[b].floor();
                        rb.total_cmp(&ra).then(a.cmp(&b))
                    });
                    for &gi in order.iter().cycle().take(ngroups * 2) {
                        if left == 0 {
                            break;
                        }
                        if alloc[gi] < members[gi].len() {
                            alloc[gi] += 1;
                            left -= 1;
                        }
                    }
                    for (gi, m) in members.iter_mut().enumerate() {
                        shuffle(m, &mut rng);
                        train.extend_from_slice(&m[..alloc[gi]]);
                        test.extend_from_slice(&m[alloc[gi]..]);
                    }
                }
            }
            train.sort_unstable();
            test.sort_unstable();
            Split { train, test }
        })
        .collect()
}

/// Integer codes of labels in first-appearance order.
pub fn codes(labels: &[String]) -> Vec<usize> {
    let mut map = std::collections::HashMap::new();
    labels
        .iter()
        .map(|l| {
            let n = map.len();
            *map.entry(l.clone()).or_insert(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_splits_partition_and_balance() {
        let groups: Vec<usize> = (0..100).map(|i| i % 4).collect();
        let splits = shuffle_splits(100, Some(&groups), 10, 0.9, 1, "cv");
        assert_eq!(splits.len(), 10);
        for s in &splits {
            assert_eq!(s.train.len(), 90);
            assert_eq!(s.test.len(), 10);
            let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..100).collect::<Vec<_>>());
            for g in 0..4 {
                let nt = s.test.iter().filter(|&&i| groups[i] == g).count();
                assert!((2..=3).contains(&nt), "group {g}: {nt} test items");
            }
        }
        assert_ne!(splits[0], splits[1]);
        assert_eq!(splits, shuffle_splits(100, Some(&groups), 10, 0.9, 1, "cv"));
        let plain = shuffle_splits(7, None, 3, 0.5, 0, "halves");
        assert!(
            plain
                .iter()
                .all(|s| s.train.len() == 3 && s.test.len() == 4)
        );
    }
}
