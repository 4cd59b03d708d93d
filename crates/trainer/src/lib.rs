//! Training of the TIGER model as the reference schedules it.
//!
//! * [`windows`]: the reference's training-example expansion and window subsampling, seeded so
//!   that micro-batch `i` is a pure function of `(seed, i)`;
//! * [`train`]: the loop (accumulation, Adam with coupled L2, step-based validation with
//!   beam-search Recall@5, early stopping, NaN guard);
//! * [`checkpoint`]: atomic, resumable checkpoints and `train_log.csv`;
//! * [`settings`]: the typed configuration mapped onto the model and the loops.

pub mod checkpoint;
pub mod settings;
pub mod train;
pub mod windows;

pub use train::{StopReason, TrainOutcome, TrainSettings, train};
pub use windows::{TrainUsers, WindowSampler};
