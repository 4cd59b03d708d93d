//! Training of the TIGER model as the reference schedules it.
//!
//! * [`windows`]: the reference's training-example expansion and window subsampling, seeded so
//!   that micro-batch `i` is a pure function of `(seed, i)`;
//! * [`trainer`]: the loop as named steps (step, validate, checkpoint, should-stop), Adam with
//!   coupled L2, step-based validation with beam-search Recall@5, early stopping, NaN guard;
//! * [`step`]: one micro-batch's chunks and their scaled losses and gradients;
//! * [`parallel`]: the same over several devices (data parallel, optimiser on the first);
//! * [`checkpoint`]: atomic, resumable checkpoints.
//!
//! Settings come from the configuration sections the trainer reads (`TrainSettings::new`).

pub mod checkpoint;
pub mod error;
pub mod parallel;
pub mod step;
pub mod trainer;
pub mod windows;

pub use error::{Error, Result};
pub use trainer::{TrainData, TrainOutcome, TrainSettings, Trainer, optimizer, train};
pub use windows::{TrainUsers, WindowSampler};
