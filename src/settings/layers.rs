//! The settings from their layers: flags over variables over the config file over defaults, and
//! for every value that did not come from a flag, where it came from, so an error about it can
//! say so (`LIVESERVE_PORT: ...`, `liveserve.toml:3: ...`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, Command, FromArgMatches};

use crate::error::StartupError;
use crate::settings::cli::{self, Cli};
use crate::settings::config_file;

/// The command line, with the environment and the config file layered under it.
pub struct Settings {
    pub cli: Cli,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// Where the values that did not come from a flag came from, by long flag name.
    origins: HashMap<String, Origin>,
}

/// Why there are no settings to run with.
#[derive(Debug)]
pub enum SettingsError {
    /// `--help` or `--version`: print it and exit as clap says (0).
    Shown(clap::Error),
    /// A bad setting, in one line: exit 2.
    Invalid(String),
}

/// Where a value came from, when not from a flag.
#[derive(Debug, Clone)]
enum Origin {
    Variable(String),
    File { file: PathBuf, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Variable(name) => f.write_str(name),
            Origin::File { file, line } => write!(f, "{}:{line}", file.display()),
        }
    }
}

impl Settings {
    /// Parses the arguments (the program's name first) over the environment and the config
    /// file. A key of the file that a flag or a variable also sets is left out, list and all,
    /// and so is one that contradicts a setting from there (`quiet` under `--verbose`).
    pub fn from_args(
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<Self, SettingsError> {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = cli::command();
        let over_file = command
            .clone()
            .try_get_matches_from(&args)
            .map_err(|error| invalid(error, &origins_of_failed_parse(&command, &args)))?;
        let mut origins = HashMap::new();
        for arg in command.get_arguments() {
            if let (Some(ValueSource::EnvVariable), Some(variable)) =
                (over_file.value_source(arg.get_id().as_str()), arg.get_env())
            {
                origins.insert(
                    long_name(arg),
                    Origin::Variable(variable.to_string_lossy().into()),
                );
            }
        }
        let file = config_file::locate(&over_file).map_err(SettingsError::Invalid)?;
        let mut file_flags = Vec::new();
        if let Some(file) = &file {
            let set_above = |id: &str| {
                matches!(
                    over_file.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            };
            for entry in config_file::read(file, &command).map_err(SettingsError::Invalid)? {
                let overridden = set_above(&entry.id)
                    || cli::contradicting(&entry.name).any(|other| {
                        command
                            .get_arguments()
                            .find(|arg| arg.get_long() == Some(other))
                            .is_some_and(|arg| set_above(arg.get_id().as_str()))
                    });
                if !overridden {
                    origins.insert(
                        entry.name,
                        Origin::File {
                            file: file.clone(),
                            line: entry.line,
                        },
                    );
                    file_flags.extend(entry.flags);
                }
            }
        }
        // The file's flags go first: after the user's, a `--` there would make them positional.
        let layered: Vec<OsString> = args
            .iter()
            .take(1)
            .cloned()
            .chain(file_flags)
            .chain(args.iter().skip(1).cloned())
            .collect();
        let matches = command
            .try_get_matches_from(layered)
            .map_err(|error| invalid(error, &origins))?;
        let cli = Cli::from_arg_matches(&matches).map_err(|error| invalid(error, &origins))?;
        if let Some((a, b)) = cli.contradiction() {
            let from: Vec<String> = [a, b]
                .iter()
                .filter_map(|name| origins.get(*name).map(Origin::to_string))
                .collect();
            let from = match from.is_empty() {
                true => String::new(),
                false => format!("{}: ", from.join(", ")),
            };
            return Err(SettingsError::Invalid(format!(
                "{from}--{a} and --{b} contradict each other; give one of them"
            )));
        }
        Ok(Settings { cli, file, origins })
    }

    /// `error`, saying first where the value it is about came from when that was a variable or
    /// the config file.
    pub fn explain(&self, error: StartupError) -> anyhow::Error {
        match error
            .setting()
            .and_then(|setting| self.origins.get(setting))
        {
            Some(origin) => anyhow::Error::new(error).context(origin.to_string()),
            None => error.into(),
        }
    }
}

/// clap's error in one line (see [`one_line`]), after the origin of the value it is about;
/// `--help` and `--version` are passed on to be printed.
fn invalid(error: clap::Error, origins: &HashMap<String, Origin>) -> SettingsError {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return SettingsError::Shown(error);
    }
    let line = one_line(&error, "liveserve --help");
    let origin = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => origins.get(&setting_named(arg)),
        _ => None,
    };
    SettingsError::Invalid(match origin {
        Some(origin) => format!("{origin}: {line}"),
        None => line,
    })
}

/// A clap usage error in one line: its first line, the arguments it found missing, its tips,
/// and for an unknown flag where the flags are listed (`help`, a command line).
pub fn one_line(error: &clap::Error, help: &str) -> String {
    let rendered = error.render().to_string();
    let mut line = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    // Which ones are listed on the lines after the first (`--exec-restart` needs `--exec`).
    if let (ErrorKind::MissingRequiredArgument, Some(ContextValue::Strings(missing))) =
        (error.kind(), error.get(ContextKind::InvalidArg))
    {
        line = format!("{line} {}", missing.join(", "));
    }
    for tip in rendered
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tip: "))
    {
        line.push_str("; ");
        line.push_str(tip);
    }
    if error.kind() == ErrorKind::UnknownArgument {
        line.push_str(&format!("; `{help}` lists the flags"));
    }
    line
}

/// The long name of the setting clap shows as `arg` (`--port <PORT>`, `[ROOT]`).
fn setting_named(arg: &str) -> String {
    let shown = arg.split_whitespace().next().unwrap_or_default();
    match shown.strip_prefix("--") {
        Some(long) => long
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => "root".to_owned(),
    }
}

fn long_name(arg: &Arg) -> String {
    arg.get_long()
        .map_or_else(|| "root".to_owned(), str::to_owned)
}

/// When the arguments did not parse, there are no matches to ask where a value came from: a
/// setting whose variable is set and whose flag is not among the arguments got it there.
fn origins_of_failed_parse(command: &Command, args: &[OsString]) -> HashMap<String, Origin> {
    let given: Vec<String> = args
        .iter()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .take_while(|arg| arg != "--")
        .collect();
    let on_command_line = |arg: &Arg| {
        given.iter().any(|given| {
            let long = arg.get_long().is_some_and(|long| {
                given
                    .strip_prefix("--")
                    .and_then(|rest| rest.strip_prefix(long))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
            });
            let short = arg.get_short().is_some_and(|short| {
                !given.starts_with("--") && given.starts_with('-') && given.contains(short)
            });
            long || short
        })
    };
    command
        .get_arguments()
        .filter_map(|arg| {
            let variable = arg.get_env()?;
            let set = std::env::var_os(variable).is_some_and(|value| !value.is_empty());
            (set && !on_command_line(arg)).then(|| {
                (
                    long_name(arg),
                    Origin::Variable(variable.to_string_lossy().into()),
                )
            })
        })
        .collect()
}

/// What must hold for any config file (checked by the fuzz target `config_file`; panics
/// otherwise): its settings are taken, or refused in one line, as the command line says errors.
pub fn check_config_file(text: &[u8]) {
    let file = std::env::temp_dir().join(format!("liveserve-fuzz-{}.toml", std::process::id()));
    std::fs::write(&file, text).expect("the file is written");
    let args = [OsString::from("liveserve"), "--config".into(), file.into()];
    let refusal = match Settings::from_args(args) {
        Ok(settings) => settings.cli.config().err().map(|error| error.to_string()),
        Err(SettingsError::Invalid(message)) => Some(message),
        Err(SettingsError::Shown(shown)) => panic!("a file asked for {shown}"),
    };
    if let Some(message) = refusal {
        assert!(
            !message.trim_end().contains('\n'),
            "not one line: {message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_names_map_to_settings() {
        assert_eq!(setting_named("--port <PORT>"), "port");
        assert_eq!(setting_named("--open[=<PATH>]"), "open");
        assert_eq!(setting_named("--quiet"), "quiet");
        assert_eq!(setting_named("[ROOT]"), "root");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Lines of a config file: the settings' keys (and near misses), with values of every shape
    /// TOML has, good and bad for each; plus arbitrary text.
    fn line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("port"),
            Just("host"),
            Just("proxy"),
            Just("mount"),
            Just("header"),
            Just("spa"),
            Just("watch"),
            Just("wait"),
            Just("poll"),
            Just("quiet"),
            Just("verbose"),
            Just("allow-host"),
            Just("prot"),
            Just("config"),
            Just("[section]"),
        ];
        let value = prop_oneof![
            Just("3000".to_owned()),
            Just("-1".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just("true".to_owned()),
            Just("1.5".to_owned()),
            Just("1979-05-27".to_owned()),
            Just("[]".to_owned()),
            Just("[[1]]".to_owned()),
            Just("{ a = 1 }".to_owned()),
            Just("\"/api=http://127.0.0.1:8000\"".to_owned()),
            Just("[\"/x=dist\", \"src\"]".to_owned()),
            Just("\"X-A: b\\nc\"".to_owned()),
            "\"[^\"\\\\]{0,12}\"",
        ];
        prop_oneof![
            4 => (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
            1 => any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_config_file_is_taken_or_refused_in_one_line(lines in prop::collection::vec(line(), 0..5)) {
            check_config_file(lines.join("\n").as_bytes());
        }
    }
}
