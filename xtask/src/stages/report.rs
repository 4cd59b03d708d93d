//! Stage `report`: every variant's and seed's `train` and `eval` artifacts into `report.md` and
//! the validation plots (both built by the `reporting` crate). A copy of `report.md` goes to
//! `runs/<dataset>/report.md`.

use anyhow::{Context, Result};
use artifacts::{ArtifactWriter, Config};
use reporting::RunResult;

use super::{Stage, StageContext, StageId, Upstream};

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
                .with_context(|| format!("no eval artifact for {key}"))?;
            RunResult::read(train_dir, eval_dir)
        })
        .collect()
}

impl Stage for ReportStage {
    fn id(&self) -> StageId {
        StageId::Report
    }

    fn about(&self) -> &'static str {
        "Table-2 report and plots"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn upstream(&self) -> &'static [StageId] {
        &[StageId::Train, StageId::Eval]
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({ "variants": config.run.variants, "report": 1 }))
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let runs = collect_runs(&ctx.upstream)?;
        let md = reporting::table2::markdown(ctx.dataset, ctx.config, &runs);
        reporting::plots::validation_plots(&runs, out.dir())?;
        std::fs::write(out.file("report.md"), &md)?;
        let run_dir = ctx.workspace.run_dir(ctx.dataset);
        artifacts::store::write_file_atomic(
            &run_dir.join("report.md"),
            md.replace("](val_", "](report/val_").as_bytes(),
        )?;
        eprintln!("{md}");
        out.rows("runs", runs.len() as u64);
        Ok(())
    }
}
