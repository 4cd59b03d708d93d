//! The command line of the project (`cargo xtask …`) and the application behind it: the stage
//! engine ([`pipeline`]) and its stages ([`stages`]), the experiments, the benchmarks, and the
//! choice of backend. Library crates do the work; this crate orchestrates.

pub mod backend;
pub mod bench;
pub mod commands;
pub mod experiment;
pub mod pipeline;
pub mod stages;
pub mod workspace;
