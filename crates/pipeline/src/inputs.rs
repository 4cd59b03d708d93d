//! Loading a run: [`RunInputs`] (data, semantic ids, catalogue and model shape — what training,
//! evaluation, the benchmarks, `recommend` and a server all start from) and [`TrainedRun`] (a
//! trained model with its inputs). One way to load a run, so every program sees the same
//! catalogue, prior and shape.

use std::path::{Path, PathBuf};

use artifacts::Config;
use artifacts::config::Variant;
use artifacts::dataset::Dataset;
use artifacts::sids::SemanticIds;
use burn::tensor::backend::Backend;
use evaluator::Catalogue;
use gr_model::artifact::load_trained;
use gr_model::tiger::{Tiger, TigerConfig};

use crate::error::Result;
use crate::id::{RunKey, StageId};
use crate::layout::RunLayout;

/// The inputs of a run: the dataset, the semantic ids, the catalogue built from them (with the
/// popularity prior when `model.prior` asks for it) and the model's shape for these ids.
pub struct RunInputs {
    /// The `Dataset` artifact.
    pub data: Dataset,
    /// The `SemanticIds` artifact.
    pub sids: SemanticIds,
    /// Item SIDs, the prefix trie and the prior.
    pub catalogue: Catalogue,
    /// The model's shape: `[model]` with the SID levels and codebook size.
    pub model: TigerConfig,
}

impl RunInputs {
    /// Loads the `data` and `sids` artifacts of `layout` (each must exist; the error says which
    /// stage to run).
    pub fn load(layout: &RunLayout, config: &Config) -> Result<RunInputs> {
        let data = layout.require(StageId::Data, None)?;
        let sids = layout.require(StageId::Sids, None)?;
        RunInputs::from_dirs(&data, &sids, config)
    }

    /// Loads the inputs from the given `data` and `sids` artifact directories (the stage engine
    /// names them as upstream artifacts).
    pub fn from_dirs(data_dir: &Path, sids_dir: &Path, config: &Config) -> Result<RunInputs> {
        let data = Dataset::read(data_dir)?;
        let sids = SemanticIds::read(sids_dir)?;
        let catalogue =
            Catalogue::from_sids(&sids)?.with_prior(config.model.prior, &data.split.train);
        let model = TigerConfig::for_sids(&config.model, &sids);
        Ok(RunInputs {
            data,
            sids,
            catalogue,
            model,
        })
    }
}

/// A trained model with the inputs it was trained on and the configuration of its variant.
pub struct TrainedRun<B: Backend> {
    /// The dataset's name.
    pub dataset: String,
    /// The run (variant and seed).
    pub run: RunKey,
    /// The configuration of the run's variant.
    pub config: Config,
    /// The run's inputs.
    pub inputs: RunInputs,
    /// The trained model (its best validation checkpoint).
    pub model: Tiger<B>,
    /// The `train` artifact it was loaded from.
    pub dir: PathBuf,
}

impl<B: Backend> TrainedRun<B> {
    /// Loads the trained model of `variant` (default: the first of `run.variants` that has one)
    /// and `seed`, with its inputs. The model's files are checked against their manifest.
    pub fn load(
        layout: &RunLayout,
        config: &Config,
        variant: Option<Variant>,
        seed: u64,
        device: &B::Device,
    ) -> Result<TrainedRun<B>> {
        let run = layout.find_trained(config, variant, seed)?;
        let config = config.for_variant(&run.variant)?;
        let inputs = RunInputs::load(layout, &config)?;
        let dir = layout.train(&run);
        let (model, _) = load_trained::<B>(&dir, device)?;
        Ok(TrainedRun {
            dataset: layout.dataset().to_string(),
            run,
            config,
            inputs,
            model,
            dir,
        })
    }
}
