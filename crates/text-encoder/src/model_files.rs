//! The files of a sentence-encoder model folder, which the encoder loads and its errors name.

/// The model files a sentence encoder needs.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
