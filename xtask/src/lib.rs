//! The command line of the project (`cargo xtask …`): [`commands`] parse arguments, call the
//! `pipeline` library and print; [`bench`] holds the benchmarks (numbers for
//! docs/benchmarks.md). The work itself lives in the library crates.

pub mod bench;
pub mod commands;
