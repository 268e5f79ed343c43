pub mod inspect;
pub mod pack;
pub mod sheet;
pub mod stimuli;
