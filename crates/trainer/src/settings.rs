//! From the typed configuration to the model's and the loops' settings.

use anyhow::{Result, ensure};
use artifacts::Config;
use artifacts::config::{KeepBasis, Padding, PositionBias, ReducerConfig, ReducerName};
use evaluator::EvalSettings;
use gr_model::tiger::{BiasAfterCut, KeepOf, ReducerSpec, TigerConfig};
use rastp::ReducerKind;

/// The model shape for a catalogue of `levels`-digit SIDs with `codes` codes per digit.
pub fn tiger_config(config: &Config, levels: usize, codes: usize) -> TigerConfig {
    let m = &config.model;
    TigerConfig {
        num_levels: levels,
        codes_per_level: codes,
        d_model: m.d_model,
        num_heads: m.num_heads,
        d_kv: m.d_kv,
        d_ff: m.d_ff,
        num_encoder_layers: m.encoder_layers,
        num_decoder_layers: m.decoder_layers,
        dropout: m.dropout,
        num_buckets: m.num_buckets,
        max_distance: m.max_distance,
        eps: 1e-6,
    }
}

/// The reducer of `[reducer]` (`None` for `kind = "none"`), checked against the model.
pub fn reducer_spec(r: &ReducerConfig, encoder_layers: usize) -> Result<Option<ReducerSpec>> {
    let kind = match r.kind {
        ReducerName::None => return Ok(None),
        ReducerName::Rastp => ReducerKind::Rastp,
        ReducerName::L2 => ReducerKind::L2,
        ReducerName::MaxPool => ReducerKind::MaxPool,
        ReducerName::AvgPool => ReducerKind::AvgPool,
        ReducerName::RastpAdaptive => {
            ensure!(
                r.mass > 0.0 && r.mass <= 1.0,
                "reducer.mass must be in (0, 1], got {}",
                r.mass
            );
            ReducerKind::RastpAdaptive { mass: r.mass }
        }
    };
    ensure!(
        (1..encoder_layers).contains(&r.after_layer),
        "reducer.after_layer must be between 1 and {} (the model has {encoder_layers} encoder \
         layers and a reduction after the last one prunes nothing the encoder uses), got {}",
        encoder_layers - 1,
        r.after_layer
    );
    ensure!(
        r.keep_ratio > 0.0 && r.keep_ratio <= 1.0,
        "reducer.keep_ratio must be in (0, 1], got {}",
        r.keep_ratio
    );
    Ok(Some(ReducerSpec {
        kind,
        after_layer: r.after_layer,
        keep_ratio: r.keep_ratio,
        position_bias: match r.position_bias {
            PositionBias::None => BiasAfterCut::None,
            PositionBias::Recompute => BiasAfterCut::Recompute,
            PositionBias::Gather => BiasAfterCut::Gather,
        },
        keep_basis: match r.keep_basis {
            KeepBasis::Padded => KeepOf::Padded,
            KeepBasis::Valid => KeepOf::Valid,
        },
    }))
}

/// Item slots of fixed padding (`max_history + 1`: the reference's 30 slots, the last one the
/// masked target's), or `None` for dynamic padding.
pub fn slots(config: &Config) -> Option<usize> {
    match config.model.padding {
        Padding::Fixed => Some(config.data.max_history + 1),
        Padding::Dynamic => None,
    }
}

/// Generation settings for validation and test.
pub fn eval_settings(config: &Config, with_loss: bool) -> Result<EvalSettings> {
    let reducer = reducer_spec(&config.reducer, config.model.encoder_layers)?;
    Ok(EvalSettings {
        beam_width: config.eval.beam_width,
        constrained: config.eval.constrained,
        batch_users: config.eval.batch_users,
        ks: config.eval.ks.clone(),
        slots: slots(config),
        reducer: reducer.filter(|_| config.reducer.at_eval),
        with_loss,
    })
}

/// The reducer part of the configuration that matters for a run (nothing for `none`).
pub fn reducer_identity(r: &ReducerConfig) -> serde_json::Value {
    match r.kind {
        ReducerName::None => serde_json::json!({ "kind": "none" }),
        _ => serde_json::to_value(r).expect("serialisable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_reducer_and_bad_values() {
        let mut c = Config::default();
        assert!(reducer_spec(&c.reducer, 4).unwrap().is_none());
        c.reducer.kind = ReducerName::Rastp;
        let s = reducer_spec(&c.reducer, 4).unwrap().unwrap();
        assert_eq!(s.after_layer, 2);
        assert_eq!(rastp::keep_count(150, s.keep_ratio), 50);
        c.reducer.after_layer = 4;
        assert!(format!("{:#}", reducer_spec(&c.reducer, 4).unwrap_err()).contains("after_layer"));
        c.reducer.after_layer = 2;
        c.reducer.keep_ratio = 0.0;
        assert!(reducer_spec(&c.reducer, 4).is_err());
        assert_eq!(slots(&Config::default()), Some(30));
    }
}
