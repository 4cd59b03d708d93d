//! gr-model
