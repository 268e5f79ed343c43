//! NumPy's legacy `RandomState` (MT19937) and the scikit-learn splitters Brain-Score uses, bit
//! for bit: `RandomState(seed).permutation`, `.choice(replace=False)`, `ShuffleSplit` and
//! `StratifiedShuffleSplit` (with `_approximate_mode`). Brain-Score's cross-validation is
//! `StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1)` over the assembly's
//! stimuli stratified by `object_name`, so ventral can reproduce its draws split by split.

use crate::cv::Split;

const N: usize = 624;
const M: usize = 397;

/// MT19937 as NumPy's legacy `RandomState` seeds and draws it.
#[derive(Debug, Clone)]
pub struct RandomState {
    key: Box<[u32; N]>,
    pos: usize,
}

impl RandomState {
    /// `np.random.RandomState(seed)` (legacy seeding of a 32-bit integer).
    pub fn new(seed: u32) -> Self {
        let mut key = Box::new([0u32; N]);
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(pos as u32 + 1);
        }
        Self { key, pos: N }
    }

    /// The state words (NumPy's `get_state()[1]`).
    pub fn key(&self) -> &[u32] {
        &self.key[..]
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        let k = &mut self.key;
        for i in 0..N {
            let y = (k[i] & UPPER) | (k[(i + 1) % N] & LOWER);
            let mut v = k[(i + M) % N] ^ (y >> 1);
            if y & 1 == 1 {
                v ^= MATRIX_A;
            }
            k[i] = v;
        }
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// A uniform integer in `0..=max` by masked rejection (NumPy's legacy `random_interval`).
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> s;
        }
        loop {
            let v = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.shuffle` of a one-dimensional array.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.interval(i as u64) as usize;
            v.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }

    /// `RandomState.choice(a, size, replace=False)` (a permutation of `a`'s positions, cut).
    pub fn choice_without_replacement<T: Copy>(&mut self, a: &[T], size: usize) -> Vec<T> {
        self.permutation(a.len())
            .into_iter()
            .take(size)
            .map(|i| a[i])
            .collect()
    }
}

/// `(n_train, n_test)` as scikit-learn's `_validate_shuffle_split` gives them for a float
/// `train_size` and no `test_size`.
pub fn train_test_sizes(n: usize, train_frac: f64) -> Result<(usize, usize), String> {
    let n_train = (train_frac * n as f64).floor() as usize;
    if !(train_frac > 0.0 && train_frac < 1.0) || n_train == 0 || n_train >= n {
        return Err(format!(
            "train_size {train_frac} of {n} samples leaves an empty training or test set"
        ));
    }
    Ok((n_train, n - n_train))
}

/// scikit-learn's `_approximate_mode(class_counts, n_draws, rng)`.
pub fn approximate_mode(counts: &[usize], n_draws: usize, rng: &mut RandomState) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 / total as f64 * n_draws as f64)
        .collect();
    let mut floored: Vec<f64> = continuous.iter().map(|c| c.floor()).collect();
    let mut need = (n_draws as f64 - floored.iter().sum::<f64>()) as i64;
    if need > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(c, f)| c - f)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let inds: Vec<usize> = (0..remainder.len())
                .filter(|&i| remainder[i] == value)
                .collect();
            let add = inds.len().min(need as usize);
            for i in rng.choice_without_replacement(&inds, add) {
                floored[i] += 1.0;
            }
            need -= add as i64;
            if need == 0 {
                break;
            }
        }
    }
    floored.iter().map(|&f| f as usize).collect()
}

/// `(n_train, n_test)` as scikit-learn's `_validate_shuffle_split` gives them for a float
/// `test_size` and no `train_size`: `ceil(test_frac · n)` test items (in floating point:
/// 0.1 · 150 rounds up to 16), the rest for training.
pub fn test_train_sizes(n: usize, test_frac: f64) -> Result<(usize, usize), String> {
    let n_test = (test_frac * n as f64).ceil() as usize;
    if !(test_frac > 0.0 && test_frac < 1.0) || n_test == 0 || n_test >= n {
        return Err(format!(
            "test_size {test_frac} of {n} samples leaves an empty training or test set"
        ));
    }
    Ok((n - n_test, n_test))
}

/// `ShuffleSplit(n_splits, train_size=train_frac, random_state=seed).split(range(n))`; the
/// index sets are returned sorted.
pub fn shuffle_split(
    n: usize,
    n_splits: usize,
    train_frac: f64,
    seed: u32,
) -> Result<Vec<Split>, String> {
    let (n_train, n_test) = train_test_sizes(n, train_frac)?;
    Ok(shuffle_split_sizes(n, n_splits, n_train, n_test, seed))
}

/// `ShuffleSplit(n_splits, test_size=test_frac, random_state=seed).split(range(n))` (the form
/// Brain-Score's OST cross-validation uses); the index sets are returned sorted.
pub fn shuffle_split_test(
    n: usize,
    n_splits: usize,
    test_frac: f64,
    seed: u32,
) -> Result<Vec<Split>, String> {
    let (n_train, n_test) = test_train_sizes(n, test_frac)?;
    Ok(shuffle_split_sizes(n, n_splits, n_train, n_test, seed))
}

fn shuffle_split_sizes(
    n: usize,
    n_splits: usize,
    n_train: usize,
    n_test: usize,
    seed: u32,
) -> Vec<Split> {
    let mut rng = RandomState::new(seed);
    (0..n_splits)
        .map(|_| {
            let p = rng.permutation(n);
            let mut test = p[..n_test].to_vec();
            let mut train = p[n_test..n_test + n_train].to_vec();
            train.sort_unstable();
            test.sort_unstable();
            Split { train, test }
        })
        .collect()
}

/// `StratifiedShuffleSplit(n_splits, train_size=train_frac, random_state=seed).split(X, y)`
/// with `y = labels` (classes in sorted order, as `np.unique` gives them); the index sets are
/// returned sorted. Errors as scikit-learn's: a class with one member, fewer training or test
/// samples than classes.
pub fn stratified_shuffle_split(
    labels: &[String],
    n_splits: usize,
    train_frac: f64,
    seed: u32,
) -> Result<Vec<Split>, String> {
    let n = labels.len();
    let (n_train, n_test) = train_test_sizes(n, train_frac)?;
    let mut classes: Vec<&str> = labels.iter().map(String::as_str).collect();
    classes.sort_unstable();
    classes.dedup();
    let code = |l: &str| classes.binary_search(&l).unwrap_or(0);
    let mut class_indices: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, l) in labels.iter().enumerate() {
        class_indices[code(l)].push(i);
    }
    let counts: Vec<usize> = class_indices.iter().map(Vec::len).collect();
    if let Some(k) = counts.iter().position(|&c| c < 2) {
        return Err(format!(
            "class '{}' has only 1 member; stratified splits need at least 2 per class",
            classes[k]
        ));
    }
    if n_train < classes.len() || n_test < classes.len() {
        return Err(format!(
            "{n_train} training and {n_test} test samples cannot hold all {} classes \
             (scikit-learn's StratifiedShuffleSplit refuses this too; lower the training \
             fraction or use more stimuli)",
            classes.len()
        ));
    }
    let mut rng = RandomState::new(seed);
    Ok((0..n_splits)
        .map(|_| {
            let n_i = approximate_mode(&counts, n_train, &mut rng);
            let remaining: Vec<usize> = counts.iter().zip(&n_i).map(|(c, t)| c - t).collect();
            let t_i = approximate_mode(&remaining, n_test, &mut rng);
            let mut train = Vec::with_capacity(n_train);
            let mut test = Vec::with_capacity(n_test);
            for (k, members) in class_indices.iter().enumerate() {
                let perm = rng.permutation(members.len());
                let picked: Vec<usize> = perm.iter().map(|&p| members[p]).collect();
                train.extend_from_slice(&picked[..n_i[k]]);
                test.extend_from_slice(&picked[n_i[k]..n_i[k] + t_i[k]]);
            }
            // scikit-learn permutes both lists last; the draws are consumed even though the
            // sets are returned sorted.
            rng.shuffle(&mut train);
            rng.shuffle(&mut test);
            train.sort_unstable();
            test.sort_unstable();
            Split { train, test }
        })
        .collect())
}
