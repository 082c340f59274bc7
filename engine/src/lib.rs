//! Continuo's engine: everything the trainer and the plugin must agree on.
//!
//! - [`vocab`]: vocabulary v1, notes <-> tokens on a beat grid, and the streaming [`vocab::Decoder`].
//! - [`midi`]: reading MIDI files into notes and writing notes back.
//! - [`model`]: the single-step ONNX contract, written by [`model::write`] and run by [`model::Model`].
//! - [`music`]: keys and scales, in a musician's words.
//! - [`sampler`]: turning logits into a token, with temperature, top-p, masks and a seed.
//! - [`generator`]: model + sampler + decoder, one token at a time, as timed note events.
//! - [`groove`]: the kit's groups, how alike two bars of hits are, and what makes a fill.
//! - [`realtime_memory`]: the model step's memory pools and the global allocator that keeps the
//!   audio thread off the system allocator.
//!
//! It depends on neither the plugin framework nor the training library.

pub mod chords;
pub mod generator;
pub mod groove;
pub mod harmony;
pub mod midi;
pub mod model;
pub mod music;
pub mod realtime_memory;
pub mod sampler;
pub mod vocab;
