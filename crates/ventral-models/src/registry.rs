//! Named model configurations (`ventral models`).

use crate::config::ModelConfig;

/// A registered model: name, description, configuration.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: &'static str,
    pub description: &'static str,
    pub config: ModelConfig,
}

/// Every registered model: each family's entries, in family order.
pub fn entries() -> Vec<Entry> {
    let mut v = crate::blt::registry::entries();
    v.extend(crate::rcnn_sat::registry::entries());
    v.extend(crate::convrnn::registry::entries());
    v
}

/// Look up a registered model.
pub fn get(name: &str) -> Option<Entry> {
    entries().into_iter().find(|e| e.name == name)
}
