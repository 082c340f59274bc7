//! The musician's own files: the folder Continuo keeps them in, the models found there, and the
//! model files loaded lately.
//!
//! The musician picks a model by path, from the files loaded recently, or from the user models
//! folder ([`user_folder`]), all inside the plugin window: no native file dialog, because a
//! dialog opened from a plugin runs a second GUI toolkit (GTK or a portal over D-Bus on Linux)
//! inside the host's process, and a modal loop on the host's GUI thread, which hosts handle
//! badly; a path field and lists work the same in every host on Linux, Windows and macOS.

use std::path::{Path, PathBuf};

/// Recent model files remembered.
const RECENT_MODELS: usize = 8;

/// Continuo's folder for the musician's own things: `models/` to choose from, `midi/` for saved
/// music, and the recent-models list. `CONTINUO_HOME` overrides it; otherwise the platform's
/// place for application data (`$XDG_DATA_HOME/continuo` or `~/.local/share/continuo` on Linux,
/// `~/Library/Application Support/Continuo` on macOS, `%APPDATA%\Continuo` on Windows).
pub fn user_folder() -> PathBuf {
    if let Some(home) = std::env::var_os("CONTINUO_HOME") {
        return PathBuf::from(home);
    }
    let env = |name| std::env::var_os(name).map(PathBuf::from);
    if cfg!(target_os = "windows") {
        return env("APPDATA").unwrap_or_default().join("Continuo");
    }
    let home = env("HOME").unwrap_or_default();
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/Continuo");
    }
    env("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share")).join("continuo")
}

pub fn models_folder() -> PathBuf {
    user_folder().join("models")
}

/// The `.onnx` files in the user models folder, by name.
pub fn models_in_folder() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(models_folder()) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("onnx")))
        .collect();
    found.sort();
    found
}

fn recent_file() -> PathBuf {
    user_folder().join("recent-models.txt")
}

/// Model files loaded lately, newest first, that still exist.
pub fn recent_models() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(recent_file()).unwrap_or_default();
    text.lines().map(PathBuf::from).filter(|p| p.exists()).collect()
}

/// Puts `path` first in the recent list.
pub fn remember_recent(path: &Path) {
    let mut recent = recent_models();
    recent.retain(|p| p != path);
    recent.insert(0, path.to_path_buf());
    recent.truncate(RECENT_MODELS);
    let text: String = recent.iter().map(|p| format!("{}\n", p.display())).collect();
    // Remembering is a convenience: a read-only home folder must not fail a load.
    let _ = std::fs::create_dir_all(user_folder()).and_then(|_| std::fs::write(recent_file(), text));
}
