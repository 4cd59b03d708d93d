//! The typed run configuration.
//!
//! A configuration is built from layers, each merged over the previous one:
//! built-in defaults (the reference pipeline's values) ← `configs/<dataset>.toml` (or `--config FILE`)
//! ← the profile (`configs/profiles/<profile>.toml`) ← `--set section.key=value` overrides.
//! Every section rejects unknown keys; the error names the key, the layer it came from and the
//! keys that are allowed there.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hashing::hash_json;
pub use crate::layer::ConfigLayer;
pub use crate::model_config::*;

/// The whole configuration of one pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the interactions and item metadata come from, and how they are split.
    pub data: DataConfig,
    /// How items become vectors (item text through a sentence encoder, or collaborative).
    pub embedding: EmbeddingConfig,
    /// How vectors become semantic ids.
    pub quantizer: QuantizerConfig,
    /// The TIGER model's shape and padding.
    pub model: ModelConfig,
    /// Token reduction inside the encoder (RASTP and baselines).
    pub reducer: ReducerConfig,
    /// The training schedule.
    pub train: TrainConfig,
    /// Generation and metrics.
    pub eval: EvalConfig,
    /// Run-wide settings (seeds).
    pub run: RunConfig,
}

/// Which loader reads a dataset folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// The P5 folder if `sequential_data.txt` is present, else the raw SNAP files.
    #[default]
    Auto,
    /// `sequential_data.txt` + `datamaps.json.gz` + `items.jsonl.gz` (the P5 / TIGER / GRID layout).
    P5,
    /// The official Amazon 2014 files `reviews_<Category>_5.json.gz` and `meta_<Category>.json.gz`.
    Raw,
    /// The deterministic synthetic `demo` dataset; no files are read.
    Synthetic,
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataFormat::Auto => "auto",
            DataFormat::P5 => "p5",
            DataFormat::Raw => "raw",
            DataFormat::Synthetic => "synthetic",
        })
    }
}

/// `[data]`: loading, filtering and splitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Which loader to use (`auto`, `p5`, `raw`, `synthetic`).
    pub format: DataFormat,
    /// The Amazon category as spelled in the raw file names, e.g. `Beauty`, `Sports_and_Outdoors`.
    pub category: String,
    /// k of the iterative k-core filter applied to raw and synthetic data (users and items with
    /// at least k interactions). P5 folders are already 5-core and are read as they are.
    pub k_core: usize,
    /// The most recent history items the model sees for one prediction. The reference trims every
    /// window (history + target) to its last 30 items and masks the target, so 29.
    pub max_history: usize,
    /// Shape of the synthetic `demo` dataset (used only when `format = "synthetic"`).
    pub synthetic: SyntheticConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            format: DataFormat::Auto,
            category: String::new(),
            k_core: 5,
            max_history: 29,
            synthetic: SyntheticConfig::default(),
        }
    }
}

/// `[data.synthetic]`: the generated `demo` dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Users generated before the k-core filter.
    pub users: usize,
    /// Items generated before the k-core filter.
    pub items: usize,
    /// Shortest and longest generated sequence (items).
    pub min_len: usize,
    /// Longest generated sequence (items).
    pub max_len: usize,
    /// Probability that the next item is the current item's fixed successor (the learnable signal).
    pub follow_prob: f64,
    /// Generator seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            users: 600,
            items: 300,
            min_len: 5,
            max_len: 20,
            follow_prob: 0.6,
            seed: 7,
        }
    }
}

/// Where item embeddings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EmbeddingSource {
    /// Item text through the sentence encoder.
    #[serde(rename = "text")]
    Text,
    /// Collaborative embeddings from the training split's co-occurrences (no text needed).
    #[serde(rename = "cf")]
    Cf,
    /// Both, each L2-normalised, concatenated.
    #[serde(rename = "text+cf")]
    TextCf,
    /// `text` when at least `auto_min_text_share` of the items have text, else `cf`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

impl fmt::Display for EmbeddingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbeddingSource::Text => "text",
            EmbeddingSource::Cf => "cf",
            EmbeddingSource::TextCf => "text+cf",
            EmbeddingSource::Auto => "auto",
        })
    }
}

/// `[embedding]`: item text → vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// `text`, `cf`, `text+cf` or `auto`.
    pub source: EmbeddingSource,
    /// With `auto`: the share of items that must have text to use it.
    pub auto_min_text_share: f64,
    /// Sentence encoder: a folder name under `models/` (config.json, model.safetensors,
    /// tokenizer.json). `all-MiniLM-L6-v2` is fetched by `cargo xtask setup`.
    pub model: String,
    /// Read the model from this folder instead of `models/<model>`.
    pub model_dir: Option<PathBuf>,
    /// Texts per forward pass (texts are sorted by length first, so padding stays small).
    pub batch_size: usize,
    /// Longest input in tokens, special tokens included; longer texts are truncated and counted.
    pub max_tokens: usize,
    /// L2-normalise the pooled vectors. Unset: the model family's convention (BERT/MiniLM yes,
    /// T5 no, as the reference).
    pub normalize: Option<bool>,
    /// How an item's fields become its text.
    pub template: TemplateConfig,
    /// Collaborative embeddings.
    pub cf: CfConfig,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            source: EmbeddingSource::Auto,
            auto_min_text_share: 0.5,
            model: "all-MiniLM-L6-v2".to_string(),
            model_dir: None,
            batch_size: 64,
            max_tokens: 256,
            normalize: None,
            template: TemplateConfig::default(),
            cf: CfConfig::default(),
        }
    }
}

/// `[embedding.template]`: item text as labelled segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateConfig {
    /// Segments with `{title}`, `{brand}`, `{categories}`, `{description}`, `{price}`
    /// placeholders; a segment whose fields are all absent is left out.
    pub segments: Vec<String>,
    /// Put between the segments that remain.
    pub separator: String,
    /// Decode HTML entities (`&amp;` → `&`) in field values.
    pub decode_html: bool,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            segments: [
                "Title: {title}",
                "Brand: {brand}",
                "Categories: {categories}",
                "Price: {price}",
            ]
            .map(String::from)
            .to_vec(),
            separator: "; ".to_string(),
            decode_html: true,
        }
    }
}

/// `[embedding.cf]`: collaborative item embeddings (PPMI of co-occurrence + truncated SVD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CfConfig {
    /// Embedding dimension.
    pub dim: usize,
    /// Two items co-occur when at most this many positions apart in a training sequence.
    pub window: usize,
    /// Power iterations of the randomized SVD.
    pub power_iters: usize,
    /// Seed of the randomized SVD.
    pub seed: u64,
}

impl Default for CfConfig {
    fn default() -> Self {
        CfConfig {
            dim: 64,
            window: 3,
            power_iters: 4,
            seed: 42,
        }
    }
}

/// Which k-means runs at each level of the residual quantizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KMeansAlgorithm {
    /// Mini-batch k-means as the reference: k-means++ on an init buffer, then a fixed number of
    /// mini-batch updates with running-count centroid steps.
    #[default]
    Minibatch,
    /// Full Lloyd iterations to a tolerance, empty clusters re-seeded from the worst-fitted points.
    Lloyd,
}

/// `[quantizer]`: residual k-means semantic ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizerConfig {
    /// `minibatch` (reference) or `lloyd`.
    pub algorithm: KMeansAlgorithm,
    /// Code levels before the de-duplication digit.
    pub levels: usize,
    /// Codes per level.
    pub codebook_size: usize,
    /// L2-normalise the residual before every level (the raw embedding included), as the reference.
    pub normalize_residuals: bool,
    /// Mini-batch size.
    pub batch_size: usize,
    /// k-means++ runs on the first this-many residuals seen (mini-batch).
    pub init_buffer: usize,
    /// Mini-batch updates per level.
    pub minibatch_updates: usize,
    /// Lloyd: most iterations per level.
    pub max_iter: usize,
    /// Lloyd: stop when an iteration moves the centres by at most this × the mean feature variance (squared), as scikit-learn.
    pub tol: f64,
    /// Independent k-means++ starts per level; the lowest inertia wins (the reference: 1).
    pub n_init: usize,
    /// Seed; the same seed gives the same codes on any thread count.
    pub seed: u64,
    /// Largest de-duplication digit allowed (255 keeps the vocabulary at 4 × 256).
    pub max_dedup: usize,
}

impl Default for QuantizerConfig {
    fn default() -> Self {
        QuantizerConfig {
            algorithm: KMeansAlgorithm::Minibatch,
            levels: 3,
            codebook_size: 256,
            normalize_residuals: true,
            batch_size: 2048,
            init_buffer: 3072,
            minibatch_updates: 10,
            max_iter: 300,
            tol: 1e-4,
            n_init: 1,
            seed: 42,
            max_dedup: 255,
        }
    }
}

/// `[run]`: settings that span stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seeds for the per-seed stages (training, evaluation); `--seeds` overrides.
    pub seeds: Vec<u64>,
    /// Reducers trained and evaluated side by side (each overrides `reducer.kind`; the rest of
    /// `[reducer]` applies to all). The default compares TIGER with RASTP, as the paper's Table 2.
    pub variants: Vec<Variant>,
}

/// One run variant: a reducer kind, optionally with its own layer and keep ratio, written
/// `kind[@after_layer][:keep_ratio]` — `rastp`, `rastp@3`, `rastp:0.5`, `l2@1:0.25`. What it does
/// not name comes from `[reducer]`. Its canonical text (see [`Variant::canonical`]) names the
/// run's directories, so `rastp@2` and `rastp` are the same run when `reducer.after_layer = 2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Variant {
    /// `reducer.kind`.
    pub kind: ReducerKind,
    /// `reducer.after_layer`, when it differs from `[reducer]`.
    pub after_layer: Option<usize>,
    /// `reducer.keep_ratio`, when it differs from `[reducer]`.
    pub keep_ratio: Option<f64>,
}

impl Variant {
    /// A plain reducer kind.
    pub fn kind(kind: ReducerKind) -> Variant {
        Variant {
            kind,
            after_layer: None,
            keep_ratio: None,
        }
    }

    /// Without the parts that equal `base` (and without any for `none`, which reduces nothing).
    pub fn canonical(&self, base: &ReducerConfig) -> Variant {
        if self.kind == ReducerKind::None {
            return Variant::kind(ReducerKind::None);
        }
        Variant {
            kind: self.kind,
            after_layer: self.after_layer.filter(|&l| l != base.after_layer),
            keep_ratio: self
                .keep_ratio
                .filter(|&r| (r - base.keep_ratio).abs() > 1e-9),
        }
    }

    /// The reducer settings of this variant over `base`.
    pub fn apply(&self, base: &ReducerConfig) -> ReducerConfig {
        let mut r = base.clone();
        r.kind = self.kind;
        if let Some(l) = self.after_layer {
            r.after_layer = l;
        }
        if let Some(k) = self.keep_ratio {
            r.keep_ratio = k;
        }
        r
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(l) = self.after_layer {
            write!(f, "@{l}")?;
        }
        if let Some(r) = self.keep_ratio {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Variant {
    type Err = Error;

    fn from_str(text: &str) -> Result<Variant> {
        let bad = |problem: String| Error::BadVariant {
            text: text.to_string(),
            problem,
        };
        let (head, ratio) = match text.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (text, None),
        };
        let (kind, layer) = match head.split_once('@') {
            Some((k, l)) => (k, Some(l)),
            None => (head, None),
        };
        let kind: ReducerKind = kind
            .parse()
            .map_err(|_| bad(format!("unknown reducer `{kind}`")))?;
        let after_layer = layer
            .map(|l| {
                l.parse::<usize>()
                    .map_err(|_| bad(format!("bad layer `{l}`")))
            })
            .transpose()?;
        let keep_ratio = ratio
            .map(|r| match r.parse::<f64>() {
                Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
                _ => Err(bad(format!("bad keep ratio `{r}` (a number in (0, 1])"))),
            })
            .transpose()?;
        Ok(Variant {
            kind,
            after_layer,
            keep_ratio,
        })
    }
}

impl TryFrom<String> for Variant {
    type Error = Error;

    fn try_from(text: String) -> Result<Variant> {
        text.parse()
    }
}

impl From<Variant> for String {
    fn from(v: Variant) -> String {
        v.to_string()
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seeds: vec![42],
            variants: vec![
                Variant::kind(ReducerKind::None),
                Variant::kind(ReducerKind::Rastp),
            ],
        }
    }
}

impl Config {
    /// The configuration of one variant: `[reducer]` with the variant's kind, layer and ratio,
    /// checked like a loaded configuration.
    pub fn for_variant(&self, variant: &Variant) -> Result<Config> {
        let mut c = self.clone();
        c.reducer = variant.apply(&self.reducer);
        c.check().map_err(|e| Error::InVariant {
            variant: variant.to_string(),
            source: Box::new(e),
        })?;
        Ok(c)
    }

    /// Sets the values that follow from others (`reducer.reference_len`).
    pub fn derive(&mut self) {
        self.reducer.reference_len = self.padding_slots_fixed() * (self.quantizer.levels + 2);
    }

    /// Item slots of fixed padding (`max_history + 1`).
    fn padding_slots_fixed(&self) -> usize {
        self.data.max_history + 1
    }

    /// Checks what the types alone cannot: value ranges and agreement between sections. Every
    /// configuration the pipeline uses has passed it ([`Config::from_layers`] and
    /// [`Config::for_variant`] call it).
    pub fn check(&self) -> Result<()> {
        self.reducer.check(self.model.encoder_layers)?;
        self.train.check()?;
        if self.eval.renormalize && !self.eval.constrained {
            return Err(Error::InvalidConfig {
                key: "eval.renormalize",
                message: "eval.renormalize needs eval.constrained = true (it renormalises over \
                          the valid digits)"
                    .to_string(),
            });
        }
        if self.model.prior == Prior::Popularity
            && !(self.train.loss == TrainLoss::Valid && self.eval.renormalize)
        {
            return Err(Error::InvalidConfig {
                key: "model.prior",
                message: "model.prior = \"popularity\" needs train.loss = \"valid\" and \
                          eval.renormalize = true (the prior is defined over the valid digits)"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// Item slots of fixed padding (`max_history + 1`: the reference's 30, the last one the
    /// masked target's), or `None` for dynamic padding.
    pub fn padding_slots(&self) -> Option<usize> {
        match self.model.padding {
            Padding::Fixed => Some(self.padding_slots_fixed()),
            Padding::Dynamic => None,
        }
    }

    /// `run.variants` in canonical form, duplicates removed, order kept.
    pub fn variants(&self) -> Vec<Variant> {
        let mut out: Vec<Variant> = Vec::new();
        for v in &self.run.variants {
            let c = v.canonical(&self.reducer);
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

impl Config {
    /// Builds a configuration from its layers over the built-in defaults, checking after every
    /// layer so that an error names the layer that introduced it.
    pub fn from_layers(layers: &[ConfigLayer]) -> Result<Config> {
        let mut merged = toml::Table::new();
        for layer in layers {
            let table = layer_table(layer)?;
            merge(&mut merged, table);
            Config::from_table(&merged).map_err(|e| match e {
                Error::ConfigKey { key, source, .. } => Error::ConfigKey {
                    layer: Some(layer.clone()),
                    key,
                    source,
                },
                e => e,
            })?;
        }
        let mut config = Config::from_table(&merged)?;
        config.derive();
        config.check()?;
        Ok(config)
    }

    /// Parses a configuration from TOML text (tests, embedded defaults).
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let table: toml::Table = text.parse().map_err(|source| Error::InvalidToml {
            path: None,
            source: Box::new(source),
        })?;
        let mut config = Config::from_table(&table)?;
        config.derive();
        Ok(config)
    }

    fn from_table(table: &toml::Table) -> Result<Config> {
        let value = toml::Value::Table(table.clone());
        serde_path_to_error::deserialize(value).map_err(|err| {
            let key = err.path().to_string();
            Error::ConfigKey {
                layer: None,
                key,
                source: Box::new(err.into_inner()),
            }
        })
    }

    /// The configuration as TOML text (what `config show` prints).
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration always serialises to TOML")
    }

    /// Hash of one serialisable part of the configuration (what a stage's manifest records).
    pub fn section_hash<T: Serialize>(section: &T) -> String {
        hash_json(section)
    }
}

fn layer_table(layer: &ConfigLayer) -> Result<toml::Table> {
    match layer {
        ConfigLayer::File(path) | ConfigLayer::Profile { path, .. } => read_table(path),
        ConfigLayer::Set(assignment) => set_table(assignment),
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io("read config file", path))?;
    text.parse::<toml::Table>()
        .map_err(|source| Error::InvalidToml {
            path: Some(path.to_path_buf()),
            source: Box::new(source),
        })
}

/// Turns `a.b.c=value` into the nested table `{a = {b = {c = value}}}`.
fn set_table(assignment: &str) -> Result<toml::Table> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::BadSet {
            assignment: assignment.to_string(),
            problem: "expected `section.key=value`",
        });
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(Error::BadSet {
            assignment: assignment.to_string(),
            problem: "the key must be dotted, `section.key` (e.g. `data.max_history`)",
        });
    }
    let value = parse_value(raw.trim());
    let mut table = toml::Table::new();
    let mut cursor = &mut table;
    for part in &parts[..parts.len() - 1] {
        cursor = cursor
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("just inserted a table");
    }
    cursor.insert(parts[parts.len() - 1].to_string(), value);
    Ok(table)
}

/// A TOML value (`3`, `1e-3`, `true`, `[1, 2]`, `"x"`), or the raw text as a string.
fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ConfigLayer {
        ConfigLayer::Set(s.to_string())
    }

    #[test]
    fn variants_parse_print_and_canonicalise() {
        let v: Variant = "rastp@3:0.5".parse().unwrap();
        assert_eq!(
            (v.kind, v.after_layer, v.keep_ratio),
            (ReducerKind::Rastp, Some(3), Some(0.5))
        );
        assert_eq!(v.to_string(), "rastp@3:0.5");
        let base = ReducerConfig::default();
        assert_eq!(v.apply(&base).after_layer, 3);
        assert_eq!(
            "max-pool@2"
                .parse::<Variant>()
                .unwrap()
                .canonical(&base)
                .to_string(),
            "max-pool"
        );
        assert_eq!(
            "none@1:0.2"
                .parse::<Variant>()
                .unwrap()
                .canonical(&base)
                .to_string(),
            "none"
        );
        for bad in ["rastp@x", "rastp:0", "rastp:1.5", "topk", "rastp:abc"] {
            let err = bad.parse::<Variant>().unwrap_err();
            assert!(
                matches!(&err, Error::BadVariant { text, .. } if text == bad),
                "{err}"
            );
            let e = err.to_string();
            assert!(e.contains(bad) && e.contains("kind[@layer]"), "{e}");
        }
        let c = Config::from_toml_str("[run]\nvariants = [\"rastp\", \"rastp@2\", \"l2:0.5\"]")
            .unwrap();
        let names: Vec<String> = c.variants().iter().map(|v| v.to_string()).collect();
        assert_eq!(names, ["rastp", "l2:0.5"]);
        assert!(Config::from_toml_str("[run]\nvariants = [\"rastp@q\"]").is_err());
    }

    #[test]
    fn defaults_follow_the_reference() {
        let c = Config::from_layers(&[]).unwrap();
        assert_eq!(c.data.max_history, 29);
        assert_eq!(c.data.k_core, 5);
        assert_eq!(c.run.seeds, vec![42]);
    }

    #[test]
    fn file_then_profile_then_set() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("beauty.toml");
        std::fs::write(&base, "[data]\ncategory = \"Beauty\"\nmax_history = 20\n").unwrap();
        let quick = dir.path().join("quick.toml");
        std::fs::write(&quick, "[data]\nmax_history = 10\n[run]\nseeds = [1, 2]\n").unwrap();
        let c = Config::from_layers(&[
            ConfigLayer::File(base),
            ConfigLayer::Profile {
                name: "quick".into(),
                path: quick,
            },
            set("data.k_core=3"),
            set("data.format=p5"),
        ])
        .unwrap();
        assert_eq!(c.data.category, "Beauty");
        assert_eq!(c.data.max_history, 10);
        assert_eq!(c.data.k_core, 3);
        assert_eq!(c.data.format, DataFormat::P5);
        assert_eq!(c.run.seeds, vec![1, 2]);
    }

    #[test]
    fn nested_set_and_float_from_integer() {
        let c = Config::from_layers(&[
            set("data.synthetic.follow_prob=1"),
            set("data.synthetic.users=50"),
        ])
        .unwrap();
        assert_eq!(c.data.synthetic.follow_prob, 1.0);
        assert_eq!(c.data.synthetic.users, 50);
    }

    /// The error with its sources, as the command line prints it.
    fn chain(err: Error) -> String {
        format!("{:#}", anyhow::Error::new(err))
    }

    #[test]
    fn unknown_key_names_key_layer_and_valid_keys() {
        let err = Config::from_layers(&[set("data.max_histroy=3")]).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigKey { layer: Some(ConfigLayer::Set(s)), key, .. }
                if s == "data.max_histroy=3" && key.starts_with("data")),
            "{err:?}"
        );
        let msg = chain(err);
        assert!(msg.contains("--set data.max_histroy=3"), "{msg}");
        assert!(msg.contains("max_histroy"), "{msg}");
        assert!(
            msg.contains("max_history") && msg.contains("k_core"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_section_lists_sections() {
        let err = Config::from_layers(&[set("dta.k_core=3")]).unwrap_err();
        assert!(matches!(&err, Error::ConfigKey { .. }), "{err:?}");
        let msg = chain(err);
        assert!(
            msg.contains("dta") && msg.contains("data") && msg.contains("run"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_in_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[data]\nk_core = 5\ncolour = \"red\"\n").unwrap();
        let err = Config::from_layers(&[ConfigLayer::File(path.clone())]).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigKey { layer: Some(ConfigLayer::File(p)), .. } if *p == path),
            "{err:?}"
        );
        let msg = chain(err);
        assert!(
            msg.contains("bad.toml") && msg.contains("colour") && msg.contains("data.colour"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::from_layers(&[set("data.max_history=many")]).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigKey { key, .. } if key == "data.max_history"),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_set_is_rejected() {
        for bad in ["max_history", "max_history=3", "data.=3"] {
            let err = Config::from_layers(&[set(bad)]).unwrap_err();
            assert!(matches!(&err, Error::BadSet { assignment, .. } if assignment == bad));
        }
    }

    #[test]
    fn missing_file_is_named() {
        let err =
            Config::from_layers(&[ConfigLayer::File("/nonexistent/x.toml".into())]).unwrap_err();
        assert!(matches!(&err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/x.toml"), "{err}");
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config::from_layers(&[set("data.category=Toys_and_Games")]).unwrap();
        assert_eq!(Config::from_toml_str(&c.to_toml_string()).unwrap(), c);
    }

    #[test]
    fn section_hash_changes_with_values() {
        let a = Config::default();
        let mut b = a.clone();
        b.data.max_history = 10;
        assert_ne!(Config::section_hash(&a.data), Config::section_hash(&b.data));
        assert_eq!(
            Config::section_hash(&a.data),
            Config::section_hash(&a.clone().data)
        );
    }
}
