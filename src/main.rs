use std::process::ExitCode;

use clap::Parser;
use liveserve::StartupError;
use liveserve::settings::Cli;

fn main() -> ExitCode {
    match liveserve::launch::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("liveserve: error: {error:#}");
            let code = error
                .downcast_ref::<StartupError>()
                .map_or(1, StartupError::exit_code);
            ExitCode::from(code)
        }
    }
}
