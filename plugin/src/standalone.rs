//! `continuo`, the standalone program: the plugin and its window without a DAW, playing to a
//! MIDI output (JACK, or ALSA through `--backend alsa --midi-output PORT`). Built with
//! `cargo build --release -p continuo --features standalone --bin continuo`; `--help` lists
//! nice-plug's options (backend, sample rate, tempo, time signature, MIDI ports).
//!
//! With JACK and a JACK transport master giving bar and beat, Continuo follows JACK's transport
//! as it follows a DAW's; otherwise the window's own Play, Pause and Stop drive the music.

fn main() {
    continuo::STANDALONE.store(true, std::sync::atomic::Ordering::Relaxed);
    if !nice_plug::nice_export_standalone::<continuo::Continuo>() {
        std::process::exit(1);
    }
}
