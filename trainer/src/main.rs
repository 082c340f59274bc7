//! `continuo-train`: turns a MIDI collection into a model the plugin plays. Filled by the
//! trainer issue (prepare, train, export, generate, eval).

fn main() {
    eprintln!("continuo-train {}: not built yet; see the trainer issue", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
