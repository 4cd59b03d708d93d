//! The errors of this crate: settings out of range, embeddings k-means cannot run on, codes the
//! de-duplication digit cannot separate.

/// Errors of the quantizer crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[quantizer]` setting out of range.
    #[error("{message}")]
    InvalidConfig {
        /// The key at fault (`quantizer.levels`, …).
        key: &'static str,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Embedding values that are not a whole number of rows (or rows of dimension 0).
    #[error("{found} values are not a whole number of {dim}-d rows")]
    WrongDimension {
        /// The row dimension.
        dim: usize,
        /// How many values there are.
        found: usize,
    },
    /// Fewer items than clusters per level.
    #[error("{items} items are fewer than the {clusters} clusters per level")]
    TooFewItems {
        /// Items.
        items: usize,
        /// Clusters per level (the codebook size).
        clusters: usize,
    },
    /// An embedding with NaN or an infinity.
    #[error("item {item} has a non-finite value ({value}) in dimension {dimension}")]
    NonFinite {
        /// The item (1-based).
        item: usize,
        /// The value.
        value: f32,
        /// The dimension (0-based).
        dimension: usize,
    },
    /// More items share one code than the de-duplication digit can number.
    #[error(
        "{largest} items share the code {code:?}, so the de-duplication digit would reach {largest} > \
         quantizer.max_dedup = {max_dedup}; use more levels or a larger codebook (or raise max_dedup, \
         which enlarges the vocabulary)"
    )]
    DedupOverflow {
        /// The largest group of items with one code.
        largest: usize,
        /// Their code.
        code: Vec<u32>,
        /// `quantizer.max_dedup`.
        max_dedup: usize,
    },
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
