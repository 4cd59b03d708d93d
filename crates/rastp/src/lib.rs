//! rastp
