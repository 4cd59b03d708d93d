//! `cargo xtask …`: the project's command line. `cargo xtask --help` is the manual; the
//! commands live in `xtask::commands`.

use clap::Parser;

fn main() {
    if let Err(err) = xtask::commands::run(xtask::commands::Cli::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
