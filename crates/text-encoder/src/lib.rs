//! Item embeddings for the semantic-id stage.
//!
//! * [`template`]: an item's fields to its text;
//! * [`bert`] and [`encode`]: sentence encoders on burn (BERT/MiniLM here, T5 through the blocks
//!   in `gr-model`), batched by length, masked-mean pooled, optionally L2-normalised;
//! * [`models`]: finding or fetching pretrained weights; [`model_files`]: what a model folder holds;
//! * [`cf`]: collaborative embeddings (PPMI + randomized SVD of training co-occurrence) for
//!   items without text.

pub mod bert;
pub mod cf;
pub mod encode;
pub mod error;
pub mod model_files;
pub mod models;
pub mod template;

pub use encode::{EncodeReport, SentenceEncoder};
pub use error::{Error, Result};
pub use template::ItemTextTemplate;
