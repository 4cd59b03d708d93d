//! The command line of the project (`cargo xtask …`): the pipeline orchestrator with stage
//! caching, data commands, configuration, backends. Ordinary Rust, one module per concern.

pub mod backend;
pub mod bench;
pub mod experiment;
pub mod pipeline;
pub mod plots;
pub mod recommend;
pub mod stages;
pub mod workspace;
