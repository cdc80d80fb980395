//! `check`: the CI policy dry-run over manifest files.

use std::process::ExitCode;

use crate::cli::CheckArgs;

/// Exit status 2: unusable arguments or input.
pub const EXIT_USAGE: u8 = 2;

pub fn run(_args: &CheckArgs) -> ExitCode {
    eprintln!("error: check is not implemented yet");
    ExitCode::from(EXIT_USAGE)
}
