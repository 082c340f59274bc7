//! `cargo xtask`: builds and installs the plugin bundles.
//!
//! - `cargo xtask bundle continuo [--release]` builds `target/bundled/Continuo.clap` and
//!   `Continuo.vst3` (nice-plug-xtask, names from bundler.toml).
//! - `cargo xtask test [ARGS]` builds every test (debug profile, so the plugin aborts on a
//!   system allocation on the audio thread), bundles the plugin library that build made, then
//!   runs `cargo test --workspace ARGS`: the plugin's tests load that bundle. Without an X
//!   display it runs them under `xvfb-run` (package `xvfb`), for the tests of the plugin's window.
//! - `cargo xtask screenshot` runs only the window's test, which leaves pictures of the window
//!   playing in `target/screenshots/`.
//! - `cargo xtask install` copies those bundles where hosts look for plugins: `~/.clap` and
//!   `~/.vst3` on Linux, `~/Library/Audio/Plug-Ins/{CLAP,VST3}` on macOS, and
//!   `%COMMONPROGRAMFILES%\{CLAP,VST3}` on Windows.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const BUNDLES: [(&str, &str); 2] = [("Continuo.clap", "CLAP"), ("Continuo.vst3", "VST3")];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("install") => install(),
        Some("test") => test(&args[1..]),
        Some("screenshot") => {
            test(&["--test".to_string(), "clap_editor".to_string()])?;
            println!(
                "screenshots: target/screenshots/continuo-editor.png, continuo-editor-second-model.png, \
                 continuo-editor-call-and-response.png, continuo-editor-loop.png"
            );
            Ok(())
        }
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let locked: Vec<&String> = args.iter().filter(|a| *a == "--locked" || *a == "--offline").collect();
    // One build for everything: the bundle is the plugin library the test build made, so no
    // crate is compiled a second time with the different features a lone `cargo build -p
    // continuo` would resolve. Built whole, whatever ARGS select, so the trainer binary the
    // window's test uses is there.
    let status = Command::new(&cargo).args(["test", "--workspace", "--no-run"]).args(&locked).status()?;
    if !status.success() {
        bail!("cargo test --no-run failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    // A test build leaves the plugin library in deps/; `cargo build` would have copied it up a
    // folder, where the bundler looks.
    let library = format!("{}continuo{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let built = target.join("debug/deps").join(&library);
    std::fs::copy(&built, target.join("debug").join(&library))
        .with_context(|| format!("{}: the test build made no plugin library", built.display()))?;
    nice_plug_xtask::bundle(&target, "continuo", &[], false)?;

    let mut command = if std::env::var_os("DISPLAY").is_some() {
        Command::new(&cargo)
    } else if which("xvfb-run") {
        let mut xvfb = Command::new("xvfb-run");
        xvfb.args(["-a", "-s", "-screen 0 1280x1024x24", &cargo]);
        xvfb
    } else {
        if std::env::var("CONTINUO_SKIP_WINDOW_TESTS").as_deref() != Ok("1") {
            eprintln!(
                "no X display and no `xvfb-run`: the window's test will fail; install xvfb (see \
                 the README) or set CONTINUO_SKIP_WINDOW_TESTS=1 to skip it"
            );
        }
        Command::new(&cargo)
    };
    let status = command.args(["test", "--workspace"]).args(args).status()?;
    if !status.success() {
        bail!("cargo test failed");
    }
    Ok(())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
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
