//! `cargo xtask bench …`: measured numbers, with the reference figures beside them. One module
//! per benchmark; each loads what it measures through the `pipeline` library (`RunInputs`) and
//! takes its defaults from the configuration types.

mod embed;
mod generate;
mod quantize;
mod quick;
mod train_step;

pub use embed::{CpuBackend, PYTORCH_EMBED_ITEMS_PER_S, embed};
pub use generate::{PYTORCH_BEAM_USERS_PER_S, generate};
pub use quantize::{SKLEARN_RQ_INERTIA, SKLEARN_RQ_SECONDS, quantize};
pub use quick::quick_recipe;
pub use train_step::{
    PYTORCH_STEP_S, StepInput, StepTiming, real_step_variants, real_windows, step_variant_name,
    train_step, train_step_one, train_step_variants,
};

/// The `data` and `sids` artifacts of `dataset` with the catalogue and model shape of `config`;
/// the error says which pipeline command makes them.
fn inputs(
    ws: &pipeline::Workspace,
    dataset: &str,
    config: &artifacts::Config,
    profile: &str,
) -> anyhow::Result<pipeline::RunInputs> {
    pipeline::RunInputs::load(&ws.layout(dataset), config).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthis benchmark needs `cargo xtask pipeline {dataset} --profile {profile} --until sids` first"
        )
    })
}
