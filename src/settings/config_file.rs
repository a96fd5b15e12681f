//! `liveserve.toml`: the settings a team keeps with the project, under the flags' long names
//! (`port = 3000`, `proxy = ["/api=http://127.0.0.1:8000"]`, `spa = true`).
//!
//! Each key becomes the flag it names (`--port=3000`), so a value in the file means exactly what
//! it means on the command line and is checked by the same parser.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use clap::{ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

use crate::access::CONFIG_FILE_NAME;

/// Flags that are about finding the file, or are not settings.
const NOT_IN_FILE: &[&str] = &["config", "no-config", "help", "version"];

/// Settings whose values are paths of folders: relative ones are relative to the file's folder,
/// so the file means the same wherever liveserve is started from.
const FOLDER_SETTINGS: &[&str] = &["watch", "mount"];

/// One key of the file, as the flags it stands for.
pub struct Entry {
    /// The clap id of the setting.
    pub id: String,
    /// The setting's long flag name.
    pub name: String,
    /// The line the key is on, from 1.
    pub line: usize,
    /// The flags, written `--name=value`.
    pub flags: Vec<OsString>,
}

/// The file to read: `--config FILE`, else `liveserve.toml` in ROOT if there is one; none with
/// `--no-config`. A `--config` file that is not there is an error.
pub fn locate(matches: &ArgMatches) -> Result<Option<PathBuf>, String> {
    if matches.get_flag("no_config") {
        return Ok(None);
    }
    if let Some(file) = matches.get_one::<PathBuf>("config") {
        if !file.is_file() {
            return Err(format!(
                "--config {}: no such file; give the path of a liveserve.toml, or leave --config out",
                file.display()
            ));
        }
        return Ok(Some(file.clone()));
    }
    let root = matches
        .get_one::<PathBuf>("root")
        .map_or(Path::new("."), PathBuf::as_path);
    Ok(Some(root.join(CONFIG_FILE_NAME)).filter(|file| file.is_file()))
}

/// The file's keys as flags of `command`. An error (unreadable file, bad TOML, unknown key, a
/// value of the wrong shape) is one line starting `FILE:LINE:`.
pub fn read(file: &Path, command: &Command) -> Result<Vec<Entry>, String> {
    let text = fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let table = DeTable::parse(&text).map_err(|error| {
        let line = error.span().map_or(1, |span| line_of(&text, span.start));
        let message = error.message().lines().next().unwrap_or("not valid TOML");
        format!("{}:{line}: {message}", file.display())
    })?;
    let folder = file.parent().unwrap_or(Path::new(""));
    let mut entries: Vec<Entry> = Vec::new();
    for (key, value) in table.get_ref() {
        let line = line_of(&text, key.span().start);
        let at = |message: String| format!("{}:{line}: {message}", file.display());
        let name = key.get_ref().replace('_', "-");
        let setting = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(&name) && !NOT_IN_FILE.contains(&name.as_str()))
            .ok_or_else(|| at(unknown_key(key.get_ref(), value.get_ref(), command)))?;
        if entries.iter().any(|entry| entry.name == name) {
            return Err(at(format!("{key} is set twice", key = key.get_ref())));
        }
        let values = flag_values(setting.get_action(), value.get_ref())
            .map_err(|reason| at(format!("{}: {reason}", key.get_ref())))?;
        let flags = values
            .into_iter()
            .map(|value| match value {
                None => OsString::from(format!("--{name}")),
                Some(value) => {
                    let value = if FOLDER_SETTINGS.contains(&name.as_str()) {
                        relative_to(folder, &value)
                    } else {
                        value
                    };
                    OsString::from(format!("--{name}={value}"))
                }
            })
            .collect();
        entries.push(Entry {
            id: setting.get_id().to_string(),
            name,
            line,
            flags,
        });
    }
    Ok(entries)
}

/// The values a key gives its flag: `None` for the flag alone. An on/off flag takes `true` or
/// `false`; a repeatable one a list (or a single value); the others one value.
fn flag_values(action: &ArgAction, value: &DeValue) -> Result<Vec<Option<String>>, String> {
    match (action, value) {
        (ArgAction::SetTrue, DeValue::Boolean(on)) => Ok(if *on { vec![None] } else { vec![] }),
        (ArgAction::SetTrue, _) => Err("expected true or false".to_owned()),
        (ArgAction::Append, DeValue::Array(items)) => items
            .iter()
            .map(|item| scalar(item.get_ref()).map(Some))
            .collect(),
        (_, DeValue::Array(_)) => Err("expected one value, not a list".to_owned()),
        (_, value) => Ok(vec![Some(scalar(value)?)]),
    }
}

/// A single value as the text of a flag's value.
fn scalar(value: &DeValue) -> Result<String, String> {
    match value {
        DeValue::String(text) => Ok(text.to_string()),
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
            .map(|number| number.to_string())
            .map_err(|_| "the number is too large".to_owned()),
        DeValue::Boolean(on) => Ok(on.to_string()),
        DeValue::Float(float) => Ok(float.as_str().to_owned()),
        DeValue::Array(_) => Err("expected a value, not a list inside a list".to_owned()),
        DeValue::Table(_) => Err("expected a value, not a table".to_owned()),
        DeValue::Datetime(_) => Err("expected a value, not a date".to_owned()),
    }
}

/// `value` (a folder, or `ROUTE=FOLDER`) with a relative folder made relative to `folder`.
fn relative_to(folder: &Path, value: &str) -> String {
    let (route, path) = match value.split_once('=') {
        Some((route, path)) => (Some(route), path),
        None => (None, value),
    };
    let path = folder.join(path).display().to_string();
    match route {
        Some(route) => format!("{route}={path}"),
        None => path,
    }
}

/// "unknown key", with the closest setting when the key looks like a typo of it.
fn unknown_key(key: &str, value: &DeValue, command: &Command) -> String {
    if let DeValue::Table(_) = value {
        return format!(
            "[{key}]: the file has no sections; write the settings at the top, e.g. port = 3000"
        );
    }
    let closest = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|name| !NOT_IN_FILE.contains(name))
        .map(|name| (strsim::jaro_winkler(key, name), name))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(similarity, _)| *similarity > 0.8);
    match closest {
        Some((_, name)) => format!("unknown key {key}; did you mean {name}?"),
        None => format!(
            "unknown key {key}; the keys are the long flag names that `liveserve --help` lists"
        ),
    }
}

/// The line of a byte offset, from 1.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
