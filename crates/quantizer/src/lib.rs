//! quantizer
