//! `cargo xtask`: builds and installs the plugin bundles.
//!
//! - `cargo xtask bundle continuo [--release]` builds `target/bundled/Continuo.clap` and
//!   `Continuo.vst3` (nice-plug-xtask, names from bundler.toml).
//! - `cargo xtask test [ARGS]` bundles the plugin (debug profile, so `assert_process_allocs`
//!   is armed), then runs `cargo test --workspace ARGS`: the plugin's tests load that bundle.
//! - `cargo xtask install` copies those bundles where hosts look for plugins: `~/.clap` and
//!   `~/.vst3` on Linux, `~/Library/Audio/Plug-Ins/{CLAP,VST3}` on macOS, and
//!   `%COMMONPROGRAMFILES%\{CLAP,VST3}` on Windows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const BUNDLES: [(&str, &str); 2] = [("Continuo.clap", "CLAP"), ("Continuo.vst3", "VST3")];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("install") => install(),
        Some("test") => test(&args[1..]),
        Some("--help") | Some("-h") | None => {
            println!(
                "{}",
                include_str!("main.rs")
                    .lines()
                    .take_while(|l| l.starts_with("//!"))
                    .map(|l| l.trim_start_matches("//!").trim_start())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            Ok(())
        }
        _ => nice_plug_xtask::main(),
    }
}

fn test(args: &[String]) -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let locked: Vec<String> =
        args.iter().filter(|a| *a == "--locked" || *a == "--offline").cloned().collect();
    nice_plug_xtask::main_with_args(
        "cargo xtask",
        ["bundle".to_string(), "continuo".to_string()].into_iter().chain(locked),
    )?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo).args(["test", "--workspace"]).args(args).status()?;
    if !status.success() {
        bail!("cargo test failed");
    }
    Ok(())
}

fn install() -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    for (bundle, format) in BUNDLES {
        let from = Path::new("target/bundled").join(bundle);
        if !from.exists() {
            bail!("{}: not built yet; run `cargo xtask bundle continuo --release` first", from.display());
        }
        let dir = plugin_dir(format)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        let to = dir.join(bundle);
        if to.is_dir() {
            std::fs::remove_dir_all(&to).with_context(|| format!("{}: cannot replace", to.display()))?;
        }
        copy(&from, &to)?;
        println!("installed {}", to.display());
    }
    Ok(())
}

fn plugin_dir(format: &str) -> Result<PathBuf> {
    if cfg!(target_os = "windows") {
        let common = std::env::var("COMMONPROGRAMFILES").context("COMMONPROGRAMFILES is not set")?;
        return Ok(Path::new(&common).join(format));
    }
    let home = PathBuf::from(std::env::var("HOME").context("HOME is not set")?);
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Audio/Plug-Ins").join(format)
    } else {
        home.join(format!(".{}", format.to_lowercase()))
    })
}

/// Copies a file or a bundle folder.
fn copy(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to)
            .map(|_| ())
            .with_context(|| format!("{}: cannot copy to {}", from.display(), to.display()))
    }
}
