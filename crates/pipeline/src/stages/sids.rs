//! Stage `sids`: the `ItemEmbeddings` artifact to the `SemanticIds` artifact (residual k-means
//! codes plus the de-duplication digit) with quality statistics.

use artifacts::embeddings::ItemEmbeddings;
use artifacts::sids::{SIDS_SCHEMA_VERSION, SemanticIds};
use artifacts::{ArtifactWriter, Config};
use quantizer::{ItemQuantizer, LevelStats, RqKMeans, add_dedup_digit};
use serde::Serialize;

use super::{Stage, StageContext, StageId, StageSpec};
use crate::error::{Result, write_file};

/// Quantizes the item embeddings.
pub struct SidsStage;

/// `stats.json`.
#[derive(Serialize)]
pub struct SidStats {
    /// Quantizer description.
    pub quantizer: String,
    /// Items.
    pub items: usize,
    /// Share of items whose k-means code is unique before the dedup digit.
    pub unique_share_before_dedup: f64,
    /// Largest group of items sharing one k-means code.
    pub largest_collision_group: usize,
    /// Codes shared by several items.
    pub colliding_codes: usize,
    /// Largest dedup digit given.
    pub max_dedup_digit: usize,
    /// Per-level quality.
    pub levels: Vec<LevelStats>,
    /// Seconds spent in k-means.
    pub seconds: f64,
}

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Sids,
    about: "RQ-KMeans semantic ids",
    schema_version: SIDS_SCHEMA_VERSION,
    upstream: &[StageId::Embed],
};

impl Stage for SidsStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&config.quantizer)
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let cfg = &ctx.config.quantizer;
        let emb = ItemEmbeddings::read(ctx.upstream.dir(StageId::Embed))?;
        let quantizer = RqKMeans::new(cfg)?;
        let started = std::time::Instant::now();
        let q = quantizer.quantize(&emb)?;
        let seconds = started.elapsed().as_secs_f64();
        let (codes, dedup) = add_dedup_digit(&q.codes, cfg.max_dedup)?;
        let stats = SidStats {
            quantizer: quantizer.name(),
            items: emb.n,
            unique_share_before_dedup: dedup.unique_share,
            largest_collision_group: dedup.largest_group,
            colliding_codes: dedup.colliding_codes,
            max_dedup_digit: dedup.max_digit,
            levels: q.levels,
            seconds,
        };
        print_stats(&stats);
        SemanticIds {
            codes,
            codebook_size: q.codebook_size,
            codebooks: q.codebooks,
            dim: q.dim,
        }
        .write(out.dir())?;
        write_file(
            &out.file(artifacts::sids::files::STATS),
            serde_json::to_string_pretty(&stats)?,
        )?;
        out.rows("items", emb.n as u64)
            .detail("quantizer", stats.quantizer.clone())
            .detail("unique_share_before_dedup", stats.unique_share_before_dedup)
            .detail(
                "largest_collision_group",
                stats.largest_collision_group as u64,
            )
            .detail("max_dedup_digit", stats.max_dedup_digit as u64);
        Ok(())
    }
}

/// Prints the statistics as a short table.
pub fn print_stats(s: &SidStats) {
    eprintln!(
        "sids: {} on {} items in {:.1} s; unique before dedup {:.1}%, largest collision group {}, max dedup digit {}",
        s.quantizer,
        s.items,
        s.seconds,
        100.0 * s.unique_share_before_dedup,
        s.largest_collision_group,
        s.max_dedup_digit
    );
    for l in &s.levels {
        eprintln!(
            "  level {}: inertia {:.2}, mean sq error {:.4}, codes used {} ({:.0}%), perplexity {:.1}, {} iterations",
            l.level,
            l.inertia,
            l.reconstruction_error,
            l.used_codes,
            100.0 * l.utilisation,
            l.perplexity,
            l.iterations
        );
    }
}
