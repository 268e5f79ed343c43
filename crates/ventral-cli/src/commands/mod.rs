pub mod inspect;
pub mod pack;
pub mod stimuli;
pub mod sheet;
