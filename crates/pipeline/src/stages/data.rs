//! Stage `data`: the dataset folder (or the generator) to the `Dataset` artifact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use artifacts::config::DataFormat;
use artifacts::dataset::DATASET_SCHEMA_VERSION;
use artifacts::{ArtifactWriter, Config};
use data_amazon::stats::DatasetStats;
use serde::Serialize;

use super::{Stage, StageContext, StageId, StageSpec};
use crate::error::{Result, write_file};

/// Loads, filters and splits the interactions.
pub struct DataStage;

/// The part of `[data]` that shapes the artifact (synthetic settings only for the demo set).
#[derive(Serialize)]
struct DataKey<'a> {
    format: DataFormat,
    category: &'a str,
    k_core: usize,
    max_history: usize,
    synthetic: Option<&'a artifacts::config::SyntheticConfig>,
}

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Data,
    about: "load, filter and split the interactions",
    schema_version: DATASET_SCHEMA_VERSION,
    upstream: &[],
};

impl Stage for DataStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn config_hash(&self, config: &Config) -> String {
        let d = &config.data;
        Config::section_hash(&DataKey {
            format: d.format,
            category: &d.category,
            k_core: d.k_core,
            max_history: d.max_history,
            synthetic: (d.format == DataFormat::Synthetic).then_some(&d.synthetic),
        })
    }

    fn external_inputs(&self, ctx: &StageContext) -> Result<BTreeMap<String, PathBuf>> {
        Ok(ctx
            .workspace
            .data_source(ctx.dataset, ctx.config)?
            .files()
            .into_iter()
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
            .collect())
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let source = ctx.workspace.data_source(ctx.dataset, ctx.config)?;
        let (dataset, notes) = data_amazon::build(&source, &ctx.config.data)?;
        dataset.write(out.dir())?;
        let stats = DatasetStats::of(&dataset.interactions);
        write_file(
            &out.file(artifacts::dataset::files::STATS),
            serde_json::to_string_pretty(&stats)?,
        )?;
        out.rows("users", stats.users as u64)
            .rows("items", stats.items as u64)
            .rows("interactions", stats.interactions as u64);
        for (k, v) in notes {
            out.detail(&k, v);
        }
        Ok(())
    }
}
