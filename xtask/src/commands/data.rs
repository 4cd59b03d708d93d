//! `cargo xtask data stats|show|fetch`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use artifacts::config::DataFormat;
use artifacts::dataset::HeldOut;
use clap::Subcommand;

use super::ConfigArgs;
use pipeline::Workspace;

/// Dataset commands.
#[derive(Subcommand)]
pub enum DataCommand {
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

/// Runs a data command.
pub fn run(ws: &Workspace, command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Stats { config } => stats(ws, &config),
        DataCommand::Show { config, item } => show(ws, &config, item),
        DataCommand::Fetch { dataset, from } => fetch(ws, &dataset, from),
    }
}

fn stats(ws: &Workspace, config: &ConfigArgs) -> Result<()> {
    let cfg = config.resolve(ws)?;
    let (source, dataset, notes) = ws.load_dataset(&config.dataset, &cfg)?;
    let stats = data_amazon::stats::DatasetStats::of(&dataset.interactions);
    println!(
        "dataset {} ({} format, {})",
        config.dataset,
        source.format(),
        ws.dataset_dir(&config.dataset).display()
    );
    print!("{stats}");
    let hist = |h: &[HeldOut]| {
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
    Ok(())
}

fn fetch(ws: &Workspace, dataset: &str, from: Option<PathBuf>) -> Result<()> {
    ws.check_dataset(dataset)?;
    let target = ws.dataset_dir(dataset);
    if let Some(from) = from {
        data_amazon::fetch::link_folder(&target, &from)?;
        println!("linked {} -> {}", target.display(), from.display());
        return Ok(());
    }
    let cfg = ws.config(dataset, None, "paper", &[])?;
    if cfg.data.format == DataFormat::Synthetic {
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
    Ok(())
}

fn show(ws: &Workspace, config: &ConfigArgs, item: usize) -> Result<()> {
    let cfg = config.resolve(ws)?;
    let (_, dataset, _) = ws.load_dataset(&config.dataset, &cfg)?;
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
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("item {item} ({})", record.asin);
    println!("  title:       {}", or_dash(record.title.clone()));
    println!("  brand:       {}", or_dash(record.brand.clone()));
    let cats = record.categories.as_ref().map(|c| {
        c.iter()
            .map(|p| p.join(" > "))
            .collect::<Vec<_>>()
            .join(" | ")
    });
    println!("  categories:  {}", or_dash(cats));
    println!("  description: {}", or_dash(record.description.clone()));
    println!(
        "  price:       {}",
        or_dash(record.price.map(|p| format!("{p:.2}")))
    );
    println!("text: {}", template.render(record));
    Ok(())
}
