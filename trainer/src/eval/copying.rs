//! Whether a model copies the music it learned: the longest run of events a generated piece
//! shares with any training song, beside the longest a training song shares with the other
//! songs when it is left out (what the data itself repeats: a chorale's cadence, a groove
//! library's pattern played in several songs).
//!
//! Owns the measure. A run is counted in events, the tokens without the VELOCITY ones (which
//! pitch starts or ends, how much time passes), so a copy played at other velocities is still a
//! copy; pitches are compared as they are, so a copy in another key is not caught. Runs are
//! found by hashing every run of a length on a ladder of lengths (each about 1.19 times the
//! last), so a length is known to that ladder's resolution: "at least 64 events" means shared
//! runs of 64 and none of the next rung, 76.

use std::collections::HashMap;

use continuo_engine::vocab::Token;
use serde::Serialize;

/// Lengths tried, in events.
fn ladder() -> Vec<usize> {
    let mut rungs = vec![4usize];
    while *rungs.last().unwrap() < 1 << 16 {
        let next = (*rungs.last().unwrap() as f64 * 1.19).ceil() as usize;
        rungs.push(next);
    }
    rungs
}

/// The longest shared runs of a set of pieces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedRuns {
    /// Pieces measured.
    pub pieces: usize,
    /// The longest run any of them shares, in events (at the ladder's resolution: at least this,
    /// less than `longest_below`).
    pub longest: usize,
    pub longest_below: usize,
    /// The median piece's longest shared run.
    pub median: usize,
}

/// What `eval` reports: the generated pieces against the training songs, and training songs
/// left out against the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Copying {
    pub generated: SharedRuns,
    pub left_out: SharedRuns,
    /// Training songs searched.
    pub training_songs: usize,
}

impl Copying {
    /// Copies no more than the data repeats itself: no generated piece shares a run longer
    /// than the longest a left-out song shares with the rest.
    pub fn copies_no_more_than_the_data(&self) -> bool {
        self.generated.longest <= self.left_out.longest
    }
}

/// A piece's events: its tokens without the VELOCITY ones.
pub fn events(tokens: &[Token]) -> Vec<u32> {
    tokens.iter().filter(|t| !matches!(t, Token::Velocity(_))).map(|t| t.id()).collect()
}

/// Measures `generated` against `songs` (each as [`events`]), and each of the songs numbered
/// `left_out`, cut to its first `cut` events, against the other songs.
pub fn measure(generated: &[Vec<u32>], songs: &[Vec<u32>], left_out: &[usize], cut: usize) -> Copying {
    let rungs = ladder();
    let generated_longest = longest_shared(generated.iter().map(|g| (g.as_slice(), None)), songs, &rungs);
    let left: Vec<(&[u32], Option<usize>)> =
        left_out.iter().map(|&i| (&songs[i][..songs[i].len().min(cut)], Some(i))).collect();
    let left_longest = longest_shared(left.into_iter(), songs, &rungs);
    let runs = |longest: Vec<usize>| {
        let mut sorted = longest.clone();
        sorted.sort_unstable();
        let top = sorted.last().copied().unwrap_or(0);
        SharedRuns {
            pieces: sorted.len(),
            longest: top,
            longest_below: rungs.iter().copied().find(|&r| r > top).unwrap_or(usize::MAX),
            median: sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        }
    };
    Copying { generated: runs(generated_longest), left_out: runs(left_longest), training_songs: songs.len() }
}

/// Each query's longest run (on the ladder) found in a song other than its own (`Some(own)`).
fn longest_shared<'a>(
    queries: impl Iterator<Item = (&'a [u32], Option<usize>)>,
    songs: &[Vec<u32>],
    rungs: &[usize],
) -> Vec<usize> {
    let queries: Vec<(&[u32], Option<usize>)> = queries.collect();
    let mut longest = vec![0usize; queries.len()];
    let mut last_rung = 0;
    for &length in rungs {
        // Only the queries that shared the last rung can share this one.
        let open: Vec<usize> =
            (0..queries.len()).filter(|&q| longest[q] == last_rung && queries[q].0.len() >= length).collect();
        last_rung = length;
        if open.is_empty() {
            break;
        }
        // Which song holds each run of this length: one song's number, or SEVERAL.
        let mut holders: HashMap<u64, u32> = HashMap::new();
        for (i, song) in songs.iter().enumerate() {
            for hash in run_hashes(song, length) {
                holders
                    .entry(hash)
                    .and_modify(|h| {
                        if *h != i as u32 {
                            *h = SEVERAL
                        }
                    })
                    .or_insert(i as u32);
            }
        }
        for q in open {
            let (events, own) = queries[q];
            let shared = run_hashes(events, length).any(|hash| match holders.get(&hash) {
                Some(&SEVERAL) => true,
                Some(&holder) => own != Some(holder as usize),
                None => false,
            });
            if shared {
                longest[q] = length;
            }
        }
    }
    longest
}

/// A holder of runs found in more than one song.
const SEVERAL: u32 = u32::MAX;

/// The polynomial hash of every run of `length` events, rolling.
fn run_hashes(events: &[u32], length: usize) -> impl Iterator<Item = u64> + '_ {
    const BASE: u64 = 0x100_0000_01B3;
    let top = (0..length.saturating_sub(1)).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let mut hash = 0u64;
    events.iter().enumerate().filter_map(move |(i, &e)| {
        if i >= length {
            hash = hash.wrapping_sub(mix(events[i - length]).wrapping_mul(top));
        }
        hash = hash.wrapping_mul(BASE).wrapping_add(mix(e));
        (i + 1 >= length).then_some(hash)
    })
}

/// Spreads an event id over 64 bits (SplitMix64's finaliser), so runs of small ids hash apart.
fn mix(event: u32) -> u64 {
    let mut z = (event as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuo_engine::sampler::Rng;

    fn song(seed: u64, len: usize) -> Vec<u32> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| (rng.next_u64() % 300) as u32).collect()
    }

    #[test]
    fn a_copied_run_is_found_at_the_ladders_resolution_and_its_own_song_does_not_count() {
        let songs: Vec<Vec<u32>> = (0..6).map(|s| song(s, 500)).collect();
        // A piece that copies 100 events of song 3, between events of its own.
        let mut piece = song(99, 50);
        piece.extend_from_slice(&songs[3][200..300]);
        piece.extend(song(98, 50));
        let rungs = ladder();
        let found = longest_shared([(piece.as_slice(), None)].into_iter(), &songs, &rungs)[0];
        let below = rungs.iter().copied().find(|&r| r > found).unwrap();
        assert!(found <= 100 && below > 100, "{found} .. {below}");
        // Random songs share nothing long with one another; a song finds itself only when it is
        // not left out.
        let own = longest_shared([(songs[2].as_slice(), Some(2))].into_iter(), &songs, &rungs)[0];
        assert!(own < 8, "{own}");
        let itself = longest_shared([(songs[2].as_slice(), None)].into_iter(), &songs, &rungs)[0];
        assert!(itself >= 400, "{itself}");
        // Two songs that share a run: left out in turn, each finds it in the other.
        let mut twins = songs.clone();
        twins[5][100..180].copy_from_slice(&songs[1][300..380]);
        let copying = measure(&[piece.clone()], &twins, &[1, 5], 1000);
        assert!(copying.left_out.longest >= 60 && copying.left_out.longest <= 80, "{copying:?}");
        assert_eq!(copying.generated.longest, found);
        assert!(
            !copying.copies_no_more_than_the_data(),
            "100 copied events are more than the 80 the data repeats"
        );
    }

    #[test]
    fn velocities_do_not_hide_a_copy() {
        let a = [Token::Velocity(3), Token::NoteOn(60), Token::TimeShift(6), Token::NoteOff(60)];
        let b = [
            Token::Velocity(20),
            Token::NoteOn(60),
            Token::TimeShift(6),
            Token::Velocity(9),
            Token::NoteOff(60),
        ];
        assert_eq!(events(&a), events(&b));
    }
}
