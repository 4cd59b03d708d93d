//! text-encoder
