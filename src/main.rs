use std::ffi::OsString;
use std::process::ExitCode;

use liveserve::__private::StartupError;
use liveserve::__private::settings::{Settings, SettingsError};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = liveserve::__private::remote::run(&args) {
        return code;
    }
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(SettingsError::Shown(help)) => {
            let _ = help.print();
            return ExitCode::from(u8::try_from(help.exit_code()).unwrap_or(0));
        }
        Err(SettingsError::Invalid(message)) => {
            eprintln!("liveserve: error: {message}");
            return ExitCode::from(2);
        }
    };
    match liveserve::__private::launch::run(settings) {
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
