//! The Continuo plugin (CLAP and VST3): runs the engine's model on the audio thread, in time
//! with the host's transport. Filled by the plugin issue; until then it only links the engine,
//! so the workspace layout is in place.

pub use continuo_engine as engine;
