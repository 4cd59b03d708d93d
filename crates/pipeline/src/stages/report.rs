//! Stage `report`: every variant's and seed's `train` and `eval` artifacts into `report.md` and
//! the validation plots (both built by the `reporting` crate). A copy of `report.md` goes to
//! `runs/<dataset>/report.md`.

use artifacts::{ArtifactWriter, Config};
use reporting::RunResult;

use super::{Stage, StageContext, StageId, StageSpec, Upstream};
use crate::error::{Error, Result, write_file};

/// Writes the report.
pub struct ReportStage;

/// Every run named in `upstream`: its `train` artifact with the `eval` artifact of the same run.
fn collect_runs(upstream: &Upstream) -> Result<Vec<RunResult>> {
    upstream
        .runs(StageId::Train)
        .map(|(key, train_dir)| {
            let eval_dir = upstream
                .runs(StageId::Eval)
                .find(|(k, _)| *k == key)
                .map(|(_, d)| d)
                .ok_or_else(|| Error::Invalid(format!("no eval artifact for {key}")))?;
            Ok(RunResult::read(train_dir, eval_dir)?)
        })
        .collect()
}

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Report,
    about: "Table-2 report and plots",
    schema_version: 1,
    upstream: &[StageId::Train, StageId::Eval],
};

impl Stage for ReportStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({ "variants": config.run.variants, "report": 1 }))
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let runs = collect_runs(&ctx.upstream)?;
        let md = reporting::table2::markdown(ctx.dataset, ctx.config, &runs);
        reporting::plots::validation_plots(&runs, out.dir())?;
        write_file(&out.file(reporting::REPORT_FILE), &md)?;
        artifacts::store::write_file_atomic(
            &ctx.layout.report_copy(),
            md.replace("](val_", "](report/val_").as_bytes(),
        )?;
        eprintln!("{md}");
        out.rows("runs", runs.len() as u64);
        Ok(())
    }
}
