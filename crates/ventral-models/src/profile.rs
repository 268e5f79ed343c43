//! Where a burn-built model's forward pass spends its time (the ConvRNN family, rcnn-sat):
//! wall-clock time per node and kind of operation, each convolution with its shape and
//! achieved GFLOP/s — off unless switched on (`ventral bench --profile`); when off a scope
//! costs one relaxed atomic load.
//!
//! burn's CPU backend (Flex) runs eagerly, so an operation's wall time is its own (its internal
//! parallel work included). Times are taken on the calling thread: profile one pass that is not
//! split into data-parallel shards, or the totals count each shard's thread. What a node spends
//! outside the timed operations (burn's own tensor operations: additions, slices,
//! concatenations, the layer norms' elementwise passes where they are not a timed kind) is
//! reported as that node's [`OTHER`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Kind of a node's whole step (the sum of its operations and what lies between them).
pub const NODE: &str = "node step";
/// A node's time outside its timed operations.
pub const OTHER: &str = "other burn operations";
/// A convolution on the engine's kernels.
pub const CONV_ENGINE: &str = "conv (engine)";
/// A convolution on the engine's depthwise kernels.
pub const CONV_DEPTHWISE: &str = "conv (engine depthwise)";
/// A convolution on burn's own implementation (grouped, dilated, asymmetric padding).
pub const CONV_BURN: &str = "conv (burn)";
/// Layer norms.
pub const LAYER_NORM: &str = "layer norm";
/// ELU, sigmoid, tanh.
pub const ACTIVATION: &str = "activation";
/// The recurrent cells' gated sums.
pub const GATED_SUM: &str = "gated sum";
/// Max-pooling.
pub const POOL: &str = "max-pool";
/// Resizing inputs to a node's size.
pub const RESIZE: &str = "resize";

/// One row of the profile: a node, a kind of operation and (convolutions) its shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub node: String,
    pub kind: String,
    /// The shape of a convolution (empty for other kinds).
    pub detail: String,
    pub calls: u64,
    pub seconds: f64,
    /// Floating-point operations (multiply and add counted apart; convolutions only).
    pub flops: f64,
}

impl Row {
    /// Achieved GFLOP/s (0 for kinds without a count).
    pub fn gflops(&self) -> f64 {
        if self.seconds > 0.0 {
            self.flops / self.seconds * 1e-9
        } else {
            0.0
        }
    }
}

type Key = (String, &'static str, String);

static ON: AtomicBool = AtomicBool::new(false);
static ROWS: Mutex<BTreeMap<Key, (u64, f64, f64)>> = Mutex::new(BTreeMap::new());

thread_local! {
    /// The node whose step this thread is running.
    static NODE_NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Switch timing on or off (and clear what was recorded).
pub fn enable(on: bool) {
    if let Ok(mut r) = ROWS.lock() {
        r.clear();
    }
    ON.store(on, Ordering::Relaxed);
}

/// Whether timing is on.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

fn add(key: Key, seconds: f64, flops: f64) {
    if let Ok(mut r) = ROWS.lock() {
        let e = r.entry(key).or_insert((0, 0.0, 0.0));
        e.0 += 1;
        e.1 += seconds;
        e.2 += flops;
    }
}

/// Times its own lifetime when profiling is on.
#[must_use]
#[derive(Debug)]
pub struct Scope(Option<(&'static str, String, f64, Instant)>);

/// Start timing an operation of `kind` in the current node; `detail` gives its shape and its
/// floating-point operations (called only when profiling is on).
#[inline]
pub fn scope(kind: &'static str, detail: impl FnOnce() -> (String, f64)) -> Scope {
    Scope(on().then(|| {
        let (d, flops) = detail();
        (kind, d, flops, Instant::now())
    }))
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some((kind, detail, flops, t)) = self.0.take() {
            let node = NODE_NAME.with(|n| n.borrow().clone());
            add((node, kind, detail), t.elapsed().as_secs_f64(), flops);
        }
    }
}

/// Times a node's step (and names the node for the operations timed inside it).
#[must_use]
#[derive(Debug)]
pub struct NodeScope(Option<(String, Instant)>);

/// Start a node's step.
#[inline]
pub fn node(name: &str) -> NodeScope {
    NodeScope(on().then(|| {
        let outer = NODE_NAME.with(|n| std::mem::replace(&mut *n.borrow_mut(), name.to_string()));
        (outer, Instant::now())
    }))
}

impl Drop for NodeScope {
    fn drop(&mut self) {
        if let Some((outer, t)) = self.0.take() {
            let node = NODE_NAME.with(|n| std::mem::replace(&mut *n.borrow_mut(), outer));
            add((node, NODE, String::new()), t.elapsed().as_secs_f64(), 0.0);
        }
    }
}

/// What was recorded since [`enable`], with each node's [`OTHER`] (its steps' time less its
/// timed operations'), largest times first.
pub fn rows() -> Vec<Row> {
    let map = ROWS.lock().map(|r| r.clone()).unwrap_or_default();
    let mut inside: BTreeMap<String, f64> = BTreeMap::new();
    let mut rows = Vec::new();
    for ((node, kind, detail), (calls, seconds, flops)) in map {
        if kind == NODE {
            *inside.entry(node.clone()).or_default() += seconds;
        } else {
            *inside.entry(node.clone()).or_default() -= seconds;
        }
        rows.push(Row {
            node,
            kind: kind.to_string(),
            detail,
            calls,
            seconds,
            flops,
        });
    }
    for (node, rest) in inside {
        if let Some(steps) = rows.iter().find(|r| r.node == node && r.kind == NODE) {
            let calls = steps.calls;
            rows.push(Row {
                node,
                kind: OTHER.to_string(),
                detail: String::new(),
                calls,
                seconds: rest.max(0.0),
                flops: 0.0,
            });
        }
    }
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    rows
}

/// The floating-point operations of a 2-D convolution producing `[b, co, ho, wo]` from
/// `ci / groups` input channels per output through a `kh × kw` kernel.
pub fn conv_flops(out: [usize; 4], ci_per_group: usize, k: [usize; 2]) -> f64 {
    let [b, co, ho, wo] = out;
    2.0 * (b * co * ho * wo) as f64 * (ci_per_group * k[0] * k[1]) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_their_operations_and_the_rest_as_other() {
        enable(true);
        {
            let _n = node("V1");
            {
                let _s = scope(CONV_ENGINE, || ("3→8".into(), 1e6));
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let rows = rows();
        enable(false);
        let get = |k: &str| rows.iter().find(|r| r.node == "V1" && r.kind == k).cloned();
        let (step, conv, other) = (
            get(NODE).unwrap(),
            get(CONV_ENGINE).unwrap(),
            get(OTHER).unwrap(),
        );
        assert_eq!(conv.detail, "3→8");
        assert_eq!((step.calls, conv.calls), (1, 1));
        assert!(conv.seconds >= 0.003 && conv.gflops() > 0.0);
        assert!((step.seconds - conv.seconds - other.seconds).abs() < 1e-9);
        assert!(other.seconds >= 0.002);
        // Off: no clock read, no detail computed.
        assert!(scope(POOL, || unreachable!()).0.is_none());
    }
}
