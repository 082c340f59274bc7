//! Any bytes at all: the MIDI reader returns a song or an error, never panics, and whatever it
//! reads survives the trip through the vocabulary unchanged.
#![no_main]

use std::path::Path;

use continuo_engine::midi;
use continuo_engine::vocab::{decode, encode_grid, quantise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(song) = midi::read_bytes(bytes, Path::new("fuzz.mid")) {
        let grid = quantise(song.notes.iter().map(|n| n.as_tuple()));
        assert_eq!(decode(&encode_grid(&grid)), grid);
    }
});
