//! `continuo-train`: turns a MIDI collection into a model the Continuo plugin plays.
//!
//! Each subcommand is a verb and lives in its own module: [`prepare`] (MIDI files -> token
//! shards), [`train`] (token shards -> checkpoints, with [`net`] the network and [`optim`] the
//! optimizer), [`export`] (checkpoint -> ONNX, checked against tract), [`generate`] (ONNX ->
//! .mid), [`eval`] (ONNX + dataset -> numbers) and [`tune`] (the defaults it plays by, into the
//! ONNX file). Vocabulary, MIDI files and the ONNX contract
//! come from the engine and are never re-implemented here.

mod cpu;
mod cross_entropy;
mod dataset;
mod eval;
mod export;
mod generate;
mod lstm;
mod net;
mod optim;
mod plot;
mod prepare;
mod progress;
mod train;
mod tune;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Train Continuo models on your own MIDI files.
///
/// A typical session: `prepare` a folder of MIDI files into a dataset, `train` a model on it,
/// `export` the best checkpoint to ONNX, then `generate` a .mid to listen to, `eval` the model
/// against its data and simple baselines, and `tune` the settings it plays by. Load the .onnx in the Continuo plugin with "Load model...".
#[derive(Parser)]
#[command(name = "continuo-train", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Prepare(prepare::Args),
    Train(train::Args),
    Export(export::Args),
    Generate(generate::Args),
    Eval(eval::Args),
    Tune(tune::Args),
}

fn main() {
    keep_freed_memory();
    end_quietly_on_a_closed_pipe();
    // The matches too: a resumed run changes only the settings the command line gave.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let train_matches = matches.subcommand_matches("train");
    let result = match cli.command {
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => train::run(args, train_matches.expect("the train subcommand's matches")),
        Command::Export(args) => export::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Tune(args) => tune::run(args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Training frees and asks again for the same large buffers every step (activations, gradients,
/// optimizer temporaries). glibc returns any freed block above its mmap threshold (it adapts up
/// to 32 MB) to the system and trims the heap's top beyond 128 kB, so every step would page-fault
/// the same megabytes in again, 10-18 % of a run's time spent in the kernel. Telling it to keep them
/// (what `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=
/// 1073741824` does from outside) removes most of those faults.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// `continuo-train eval ... | head` closes the pipe early: end as Unix tools do, silently, not
/// with a panic from the next `println!` (Rust ignores SIGPIPE by default).
fn end_quietly_on_a_closed_pipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
