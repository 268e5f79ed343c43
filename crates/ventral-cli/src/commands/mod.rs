pub mod bench;
pub mod inspect;
pub mod models;
pub mod pack;
pub mod record;
pub mod sheet;
pub mod stimuli;
pub mod train;
