//! [`ConfigLayer`]: one layer of a configuration (a file, a profile, a `--set`), which the
//! configuration applies and its errors name.

use std::fmt;
use std::path::PathBuf;

/// One layer of configuration, in the order they are applied.
#[derive(Debug, Clone)]
pub enum ConfigLayer {
    /// A TOML file with any subset of the sections.
    File(PathBuf),
    /// A named profile overlay: a TOML file like any other, reported under its name.
    Profile { name: String, path: PathBuf },
    /// One `section.key=value` override; the value is TOML (strings may be bare).
    Set(String),
}

impl fmt::Display for ConfigLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigLayer::File(p) => write!(f, "{}", p.display()),
            ConfigLayer::Profile { name, path } => {
                write!(f, "profile `{name}` ({})", path.display())
            }
            ConfigLayer::Set(s) => write!(f, "--set {s}"),
        }
    }
}
