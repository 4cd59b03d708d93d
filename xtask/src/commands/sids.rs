//! `cargo xtask sids show`.

use anyhow::{Context, Result};
use artifacts::dataset::Dataset;
use artifacts::sids::SemanticIds;
use clap::Subcommand;
use pipeline::{StageId, Workspace};

use super::ConfigArgs;

/// Semantic-id commands.
#[derive(Subcommand)]
pub enum SidsCommand {
    /// Print one item's semantic id and text.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// Item id as in the dataset files (1-based).
        #[arg(long)]
        item: usize,
    },
}

/// Runs a sids command.
pub fn run(ws: &Workspace, command: SidsCommand) -> Result<()> {
    let SidsCommand::Show { config, item } = command;
    let cfg = config.resolve(ws)?;
    let layout = ws.layout(&config.dataset);
    let sids = SemanticIds::read(&layout.require(StageId::Sids, None)?)?;
    let dataset = Dataset::read(&layout.require(StageId::Data, None)?)?;
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
    Ok(())
}
