//! Which changed paths below the root never cause a reload, and which folders are not watched.
//!
//! Everything is matched relative to the root, so `liveserve target/doc` or `liveserve dist`
//! still works when the folder itself sits where a rule would ignore it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::access::Access;

/// Folders that are never watched, wherever they are below the root: version control, package
/// caches and build output that tools rewrite constantly.
const IGNORED_FOLDERS: &[&str] = &[".git", "node_modules", "target"];

/// Endings of editor temp and swap files: vim (`.swp`, `.swx`, `.swo`, backups ending in `~`)
/// and JetBrains "safe write" (`___jb_tmp___`, `___jb_old___`).
const EDITOR_TEMP_SUFFIXES: &[&str] =
    &[".swp", ".swx", ".swo", "~", "___jb_tmp___", "___jb_old___"];

/// Editor temp files by whole name or shape: the above, emacs (`#name#`, `.#name`) and the file
/// vim writes to probe whether a folder is writable, `4913`. Plain string tests, not globs: this
/// runs for every event, and a glob set would cost a regex engine in memory.
fn is_editor_temp_file(name: &str) -> bool {
    EDITOR_TEMP_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || name.starts_with(".#")
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
}

/// Why the rules could not be built: a bad `--ignore` glob.
#[derive(Debug, thiserror::Error)]
#[error("--ignore {glob:?} is not a valid glob: {source}")]
pub struct BadGlob {
    glob: String,
    source: globset::Error,
}

pub struct IgnoreRules {
    root: PathBuf,
    access: Access,
    user_globs: GlobSet,
    use_gitignore: bool,
    /// The `.gitignore` of each folder below the root that has one, by folder (relative).
    gitignores: HashMap<PathBuf, Gitignore>,
}

impl IgnoreRules {
    /// `root` must be canonical, as event paths are. `user_globs` are added to the defaults.
    pub fn new(
        root: &Path,
        access: Access,
        user_globs: &[String],
        use_gitignore: bool,
    ) -> Result<Self, BadGlob> {
        let user_globs = glob_set(user_globs)?;
        Ok(IgnoreRules {
            root: root.to_path_buf(),
            access,
            user_globs,
            use_gitignore,
            gitignores: HashMap::new(),
        })
    }

    /// A short description for the start-up line.
    pub fn describe(user_globs: &[String], use_gitignore: bool) -> String {
        let mut parts = vec![
            ".git".to_owned(),
            "node_modules".to_owned(),
            "target".to_owned(),
            "hidden files".to_owned(),
            "editor temp files".to_owned(),
        ];
        if use_gitignore {
            parts.push(".gitignore rules".to_owned());
        }
        parts.extend(user_globs.iter().cloned());
        parts.join(", ")
    }

    /// Reads (or forgets) the `.gitignore` of `folder`, an absolute path below the root. Called
    /// for every folder as it is first watched, and again when its `.gitignore` changes.
    pub fn load_gitignore(&mut self, folder: &Path) {
        if !self.use_gitignore {
            return;
        }
        let Ok(relative) = folder.strip_prefix(&self.root) else {
            return;
        };
        let file = folder.join(".gitignore");
        if !file.is_file() {
            self.gitignores.remove(relative);
            return;
        }
        let mut builder = GitignoreBuilder::new(folder);
        if let Some(error) = builder.add(&file) {
            tracing::warn!("{}: {error}", file.display());
        }
        match builder.build() {
            Ok(gitignore) => {
                self.gitignores.insert(relative.to_path_buf(), gitignore);
            }
            Err(error) => tracing::warn!("{}: {error}", file.display()),
        }
    }

    /// Whether a change at `path` (absolute, below the root) is ignored. Paths outside the root
    /// are ignored too: they cannot be served.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return true;
        };
        let mut names = Vec::new();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return true;
            };
            let Some(name) = name.to_str() else {
                return true;
            };
            if !self.access.allows(name) || IGNORED_FOLDERS.contains(&name) {
                return true;
            }
            names.push(name);
        }
        let Some(file_name) = names.last() else {
            return false; // the root itself
        };
        if is_editor_temp_file(file_name) {
            return true;
        }
        // A user glob may name the path or any folder above it (`--ignore dist`).
        let mut prefix = PathBuf::new();
        for name in &names {
            prefix.push(name);
            if self.user_globs.is_match(&prefix) {
                return true;
            }
        }
        self.gitignored(relative, path, is_dir)
    }

    /// Gitignore semantics: each folder's file applies below it, a deeper file overrides a
    /// shallower one, and an ignored folder ignores everything in it.
    fn gitignored(&self, relative: &Path, path: &Path, is_dir: bool) -> bool {
        let mut ignored = false;
        let mut folder = PathBuf::new();
        let mut folders = vec![folder.clone()];
        for component in relative.parent().into_iter().flat_map(Path::components) {
            folder.push(component);
            folders.push(folder.clone());
        }
        for folder in folders {
            if let Some(gitignore) = self.gitignores.get(&folder) {
                match gitignore.matched_path_or_any_parents(path, is_dir) {
                    Match::Ignore(_) => ignored = true,
                    Match::Whitelist(_) => ignored = false,
                    Match::None => {}
                }
            }
        }
        ignored
    }
}

fn glob_set(globs: &[String]) -> Result<GlobSet, BadGlob> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let parsed = Glob::new(glob).map_err(|source| BadGlob {
            glob: glob.to_owned(),
            source,
        })?;
        builder.add(parsed);
    }
    builder.build().map_err(|source| BadGlob {
        glob: String::new(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(root: &Path, globs: &[&str]) -> IgnoreRules {
        let globs: Vec<String> = globs.iter().map(|glob| glob.to_string()).collect();
        IgnoreRules::new(root, Access::default(), &globs, true).unwrap()
    }

    #[test]
    fn defaults() {
        let root = Path::new("/site");
        let rules = rules(root, &[]);
        for ignored in [
            ".git/index",
            "node_modules/x/index.js",
            "a/node_modules/b.js",
            "target/debug/x",
            ".env",
            "a/.hidden/x.css",
            "key.pem",
            "index.html.swp",
            ".index.html.swx",
            "index.html~",
            "#index.html#",
            ".#index.html",
            "index.html___jb_tmp___",
            "index.html___jb_old___",
            "4913",
            "a/4913",
        ] {
            assert!(
                rules.is_ignored(&root.join(ignored), false),
                "{ignored} is ignored"
            );
        }
        for kept in [
            "index.html",
            "css/site.css",
            ".well-known/x",
            "targets/x",
            "a4913",
        ] {
            assert!(!rules.is_ignored(&root.join(kept), false), "{kept} is kept");
        }
        assert!(rules.is_ignored(Path::new("/elsewhere/x"), false));
        assert!(!rules.is_ignored(root, true));
    }

    #[test]
    fn the_root_may_sit_inside_an_ignored_folder() {
        let root = Path::new("/project/target/doc");
        assert!(!rules(root, &[]).is_ignored(&root.join("index.html"), false));
    }

    #[test]
    fn user_globs_add_to_the_defaults() {
        let root = Path::new("/site");
        let rules = rules(root, &["*.log", "dist", "gen/**/*.js"]);
        assert!(rules.is_ignored(&root.join("a/b/c.log"), false));
        assert!(rules.is_ignored(&root.join("dist"), true));
        assert!(rules.is_ignored(&root.join("dist/app.js"), false));
        assert!(rules.is_ignored(&root.join("gen/x/y.js"), false));
        assert!(!rules.is_ignored(&root.join("app.js"), false));
        assert!(
            rules.is_ignored(&root.join("x.swp"), false),
            "defaults stay"
        );
        assert!(IgnoreRules::new(root, Access::default(), &["a[".to_owned()], true).is_err());
    }

    #[test]
    fn gitignore_files_inside_the_root_apply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.tmp\n!keep.tmp\n").unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/.gitignore"), "local.html\n").unwrap();
        let mut rules = rules(&root, &[]);
        rules.load_gitignore(&root);
        rules.load_gitignore(&root.join("sub"));
        assert!(rules.is_ignored(&root.join("build"), true));
        assert!(rules.is_ignored(&root.join("build/out.js"), false));
        assert!(rules.is_ignored(&root.join("x.tmp"), false));
        assert!(!rules.is_ignored(&root.join("keep.tmp"), false));
        assert!(rules.is_ignored(&root.join("sub/local.html"), false));
        assert!(
            !rules.is_ignored(&root.join("local.html"), false),
            "sub's rules stay in sub"
        );

        let mut off = IgnoreRules::new(&root, Access::default(), &[], false).unwrap();
        off.load_gitignore(&root);
        assert!(
            !off.is_ignored(&root.join("x.tmp"), false),
            "--no-gitignore"
        );
    }
}
