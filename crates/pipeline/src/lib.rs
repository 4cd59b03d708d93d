//! The pipeline as a library: what the command line, a server or a benchmark uses to run the
//! stages and to find and load a trained run.
//!
//! * [`workspace`]: the project's folders (configs, datasets, runs, models) and the resolved
//!   configuration of a dataset;
//! * [`layout`]: [`RunLayout`], the one place that knows where every artifact lives;
//! * [`inputs`]: [`RunInputs`] and [`TrainedRun`], the one way to load a run;
//! * [`engine`] and [`stages`]: the stage engine (reuse by fingerprint, the run lock) and the
//!   stages data → embed → sids → train → eval → report;
//! * [`experiment`]: the paper's research questions as plans over the unchanged pipeline;
//! * [`recommend`]: top-K items for a user or a history from a trained run;
//! * [`demo`]: the synthetic demo dataset through the real stages in a runs folder of its own;
//! * [`backend`]: the burn backend picked by Cargo features (`cuda`, `wgpu`, `tch`; default
//!   `flex`), the only place that names one.
//!
//! Errors are [`Error`]: variants a caller can act on (unknown user, missing artifact, …).

pub mod backend;
pub mod demo;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod id;
pub mod inputs;
pub mod layout;
pub mod recommend;
pub mod stages;
pub mod workspace;

pub use demo::Demo;
pub use engine::{PipelineOptions, StageReport, Status};
pub use error::{Error, Result};
pub use id::{RunKey, StageId};
pub use inputs::{RunInputs, TrainedRun};
pub use layout::RunLayout;
pub use stages::registry;
pub use workspace::Workspace;
