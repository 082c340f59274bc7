//! The host's transport as the music follows it: what the host says about a block
//! ([`HostTransport`]), the player's own sample-exact [`Clock`], the one [`Decision`] each block
//! makes ([`Follower::follow`]), bar arithmetic, and the standalone program's own play / pause /
//! stop ([`OwnTransport`]). Nothing here knows of nice-plug or of the model.
//!
//! The rules, which real hosts make necessary:
//! - The music's grid is the host's. Its step 0, where the model believes a beat starts, is a
//!   host beat: the first at or after where play begins. Hosts send pre-roll blocks marked playing
//!   at negative positions, and a locate lands anywhere; the music still starts on a beat, and
//!   every note lies a whole number of grid steps from the host's beat 0.
//! - Between jumps the clock is ours, counted in samples at the host's tempo. Hosts round their
//!   positions (Ardour keeps them in 1/1920 beat); placed block by block from a rounded position,
//!   notes jitter by samples. A host position within [`ROUNDING_TOLERANCE`] of the clock is
//!   rounding and is ignored. Further, up to [`RESYNC_LIMIT`], is drift (a tempo ramp inside
//!   blocks, which the host integrates and a plugin sees only at block starts): the clock moves
//!   to the host and the music plays on. Further still is a jump (a locate, a loop, a rewind):
//!   the music starts again on the next beat.
//! - The clock starts as exactly as the host allows. Its sample position is exact in every host;
//!   its beat position may be rounded. Where the two agree through the tempo (the tempo has not
//!   changed earlier in the song), the beats come from the samples.

use std::sync::atomic::{AtomicU64, Ordering};

use continuo_engine::vocab::STEPS_PER_BEAT;

/// The tempo assumed when the host gives none.
pub use continuo_engine::midi::DEFAULT_BPM;
/// Host beat positions this close to the clock, in beats, are the host's rounding: above the
/// rounding of hosts that keep ticks (Ardour's 1/1920 beat: 1/3840 at most; 960 per beat:
/// 1/1920), about a millisecond at 120 BPM.
pub const ROUNDING_TOLERANCE: f64 = 1.0 / 480.0;
/// A host whose seconds run on with the clock but whose beats are further than the rounding, and
/// at most this far, in beats, has drifted (a tempo ramp inside blocks, which the host integrates
/// and a plugin sees only at block starts): the clock follows and the music plays on.
pub const RESYNC_LIMIT: f64 = 0.25;
/// Host seconds this close to the clock's, in samples, are the same place: hosts count samples
/// exactly, and CLAP's fixed-point seconds are finer than a thousandth of a sample.
pub const SAMPLE_TOLERANCE: f64 = 1.0;
/// A host's beats and its seconds converted at its tempo agree this closely, in beats, when the
/// tempo has not changed before this point and the beats are the seconds rounded (Ardour's
/// rounding is 1/3840 beat at most). Tighter than [`ROUNDING_TOLERANCE`], so that in a song
/// whose tempo changed, a chance agreement can cost at most this much.
pub const SECONDS_AGREE: f64 = 1.0 / 1024.0;
/// A start this close before a beat, in beats, starts on that beat (floating-point error in
/// positions computed from seconds).
const ON_THE_BEAT: f64 = 1e-6;

/// What the host says about the block about to be processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostTransport {
    pub playing: bool,
    pub tempo: Option<f64>,
    /// Position of the block's first sample, in beats (quarter notes), when the host says.
    pub pos_beats: Option<f64>,
    /// The same in seconds of the song, when the host says (or its sample position, converted).
    pub pos_seconds: Option<f64>,
    pub sample_rate: f32,
    pub samples: usize,
    /// (numerator, denominator), when the host says.
    pub time_signature: Option<(u32, u32)>,
    /// Where the bar being played started, in beats, when the host says.
    pub bar_start: Option<f64>,
}

impl HostTransport {
    pub fn tempo(&self) -> f64 {
        self.tempo.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(DEFAULT_BPM)
    }

    pub fn samples_per_beat(&self) -> f64 {
        self.sample_rate as f64 * 60.0 / self.tempo()
    }

    pub fn time_signature(&self) -> (u32, u32) {
        self.time_signature.filter(|(n, d)| *n > 0 && *d > 0).unwrap_or((4, 4))
    }

    fn beats(&self) -> Option<f64> {
        self.pos_beats.filter(|b| b.is_finite())
    }

    fn seconds(&self) -> Option<f64> {
        self.pos_seconds.filter(|s| s.is_finite())
    }

    /// Where the block starts, in beats, as exactly as the host allows: from the seconds when
    /// they agree with the beats through the tempo (the beats may be rounded, the seconds are
    /// not), else the beats, else the seconds at this tempo.
    pub fn position(&self) -> Option<f64> {
        let from_seconds = self.seconds().map(|s| s * self.tempo() / 60.0);
        match (self.beats(), from_seconds) {
            (Some(beats), Some(exact)) if (beats - exact).abs() <= SECONDS_AGREE => Some(exact),
            (Some(beats), _) => Some(beats),
            (None, exact) => exact,
        }
    }
}

/// The player's clock: the host position it should be at, counted in samples from the tempo, so
/// that no rounding of the host's accumulates or reaches a note. Time is kept as a tempo segment
/// (its start in beats, the samples since, samples per beat): a position is a function of whole
/// samples, so the same music lands on the same samples however the host cuts its blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    segment_beats: f64,
    segment_samples: u64,
    samples_per_beat: f64,
    /// The song position in seconds when the clock started, if the host gave one, and the
    /// samples since, at `sample_rate`: how a host that gives only seconds is followed.
    start_seconds: Option<f64>,
    elapsed_samples: u64,
    sample_rate: f64,
}

impl Clock {
    pub fn start(beats: f64, seconds: Option<f64>, samples_per_beat: f64, sample_rate: f64) -> Clock {
        Clock {
            segment_beats: beats,
            segment_samples: 0,
            samples_per_beat,
            start_seconds: seconds,
            elapsed_samples: 0,
            sample_rate,
        }
    }

    /// Where the clock is, in beats.
    pub fn beats(&self) -> f64 {
        self.segment_beats + self.segment_samples as f64 / self.samples_per_beat
    }

    pub fn seconds(&self) -> Option<f64> {
        self.start_seconds.map(|s| s + self.elapsed_samples as f64 / self.sample_rate)
    }

    /// A new tempo (or sample rate) from now on: a new segment starts here.
    pub fn set_samples_per_beat(&mut self, samples_per_beat: f64) {
        if samples_per_beat != self.samples_per_beat {
            self.segment_beats = self.beats();
            self.segment_samples = 0;
            self.samples_per_beat = samples_per_beat;
        }
    }

    pub fn advance(&mut self, samples: usize) {
        self.segment_samples += samples as u64;
        self.elapsed_samples += samples as u64;
    }

    /// How many samples from now `beats` falls (negative: in the past), at the present tempo.
    pub fn samples_until(&self, beats: f64) -> f64 {
        (beats - self.segment_beats) * self.samples_per_beat - self.segment_samples as f64
    }

    /// How the host's position relates to the clock. Its seconds (its sample position) are exact:
    /// they tell a move from none to the sample. Its beats may be rounded: they tell drift, and a
    /// move when there are no seconds.
    pub fn compare(&self, host: &HostTransport) -> Motion {
        let beats = host.position().filter(|_| host.beats().is_some()).map(|p| p - self.beats());
        if let (Some(theirs), Some(ours)) = (host.seconds(), self.seconds()) {
            if ((theirs - ours) * self.sample_rate).abs() > SAMPLE_TOLERANCE {
                return Motion::Moved;
            }
        }
        match beats {
            Some(d) if d.abs() <= ROUNDING_TOLERANCE => Motion::Still,
            Some(d) if d.abs() <= RESYNC_LIMIT && host.seconds().is_some() => Motion::Drift(d),
            Some(_) => Motion::Moved,
            None => Motion::Still,
        }
    }
}

/// How the host's position relates to the player's clock at a block's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Motion {
    /// Where the clock is (up to the host's rounding), or the host does not say.
    Still,
    /// Its seconds run on with the clock, its beats have drifted this far from it (a tempo ramp
    /// inside blocks).
    Drift(f64),
    /// Somewhere else: a locate, a loop, a rewind.
    Moved,
}

/// Where the transport stands, as the player sees it (and, standalone, as the window asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportState {
    #[default]
    Stopped,
    Playing,
    Paused,
}

impl TransportState {
    /// How it is kept in an atomic.
    pub fn code(self) -> u64 {
        match self {
            TransportState::Stopped => 0,
            TransportState::Playing => 1,
            TransportState::Paused => 2,
        }
    }

    pub fn from_code(code: u64) -> TransportState {
        match code {
            1 => TransportState::Playing,
            2 => TransportState::Paused,
            _ => TransportState::Stopped,
        }
    }
}

/// What a block does to the music.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Nothing changes: playing on, or silent and staying so.
    Continue,
    /// Playing on after the clock followed the host's drift.
    Resync,
    /// The transport stopped or the plugin is bypassed: every note ends now, and the music keeps
    /// its state for a resume.
    Pause,
    /// Play goes on where it paused: the music continues.
    Resume,
    /// The music starts again from its beginning, its step 0 at this host beat.
    Restart { origin: f64 },
    /// Moved while paused (a stop that rewinds, a locate): the music goes back to its start and
    /// waits for play.
    Rewind,
}

/// Follows the host's transport block by block: the state, the clock, and each block's decision.
#[derive(Debug, Clone, Default)]
pub struct Follower {
    state: TransportState,
    clock: Option<Clock>,
}

impl Follower {
    pub fn state(&self) -> TransportState {
        self.state
    }

    /// The clock at the start of the block being processed (after [`Follower::follow`]).
    pub fn clock(&self) -> Option<&Clock> {
        self.clock.as_ref()
    }

    /// Decides what this block does, and sets the clock to the block's start.
    pub fn follow(&mut self, host: &HostTransport) -> Decision {
        let samples_per_beat = host.samples_per_beat();
        let motion = self.clock.as_ref().map_or(Motion::Still, |c| c.compare(host));
        let start_here =
            |beats: f64| Clock::start(beats, host.seconds(), samples_per_beat, host.sample_rate as f64);
        let decision = match (self.state, host.playing, motion) {
            (TransportState::Playing, true, Motion::Still) => Decision::Continue,
            (TransportState::Playing, true, Motion::Drift(d)) => {
                let beats = self.clock.as_ref().map_or(0.0, Clock::beats) + d;
                self.clock = Some(start_here(beats));
                Decision::Resync
            }
            (TransportState::Playing, false, _) => {
                self.state = TransportState::Paused;
                Decision::Pause
            }
            (TransportState::Paused, true, Motion::Still) => {
                self.state = TransportState::Playing;
                Decision::Resume
            }
            (TransportState::Paused, false, Motion::Still) => Decision::Continue,
            (TransportState::Paused, false, _) => {
                self.state = TransportState::Stopped;
                self.clock = None;
                Decision::Rewind
            }
            (TransportState::Stopped, false, _) => Decision::Continue,
            // Play from stop, a jump while playing, play elsewhere than the pause.
            (_, true, _) => self.restart_at(host, start_here),
        };
        if self.state == TransportState::Playing {
            if let Some(clock) = &mut self.clock {
                clock.set_samples_per_beat(samples_per_beat);
            }
        }
        decision
    }

    /// Play from where the host is (where the clock is, or 0, when the host does not say): the
    /// clock starts there, the music on the next beat.
    fn restart_at(&mut self, host: &HostTransport, start_here: impl Fn(f64) -> Clock) -> Decision {
        let beats = host.position().unwrap_or_else(|| self.clock.as_ref().map_or(0.0, Clock::beats));
        self.clock = Some(start_here(beats));
        self.state = TransportState::Playing;
        Decision::Restart { origin: next_beat(beats) }
    }

    /// The block is over: a playing clock moves on by its samples.
    pub fn end_block(&mut self, samples: usize) {
        if self.state == TransportState::Playing {
            if let Some(clock) = &mut self.clock {
                clock.advance(samples);
            }
        }
    }

    /// Forgets where the host was: the next play starts afresh (deactivation, a restart asked
    /// for by the musician).
    pub fn reset(&mut self) {
        *self = Follower::default();
    }
}

/// A block being played, on the music's grid: the clock at its first sample and the origin (the
/// host beat where the music's step 0 sounds), which together place grid steps on samples.
#[derive(Debug, Clone, Copy)]
pub struct BlockOnGrid {
    pub clock: Clock,
    /// The host beat of the music's step 0: always a whole beat.
    pub origin_beats: f64,
    pub samples_per_beat: f64,
    pub samples: usize,
    pub time_signature: (u32, u32),
}

impl BlockOnGrid {
    /// The grid step (from the music's start) nearest the sample `offset` into this block.
    pub fn step_at(&self, offset: u32) -> u64 {
        let beats = self.beats_from_origin(offset as f64);
        (beats * STEPS_PER_BEAT as f64).round().max(0.0) as u64
    }

    /// The grid step (fractional) of the sample `offset` into this block.
    pub fn exact_step_at(&self, offset: u32) -> f64 {
        self.beats_from_origin(offset as f64) * STEPS_PER_BEAT as f64
    }

    /// Beats from the music's start to the sample `offset` (fractional) into this block.
    pub fn beats_from_origin(&self, offset: f64) -> f64 {
        self.clock.beats() + offset / self.samples_per_beat - self.origin_beats
    }

    /// Samples from this block's start to grid step `step` (negative: before it).
    pub fn samples_until_step(&self, step: u64) -> f64 {
        self.clock.samples_until(self.origin_beats + step as f64 / STEPS_PER_BEAT as f64)
    }
}

/// The first bar line at or after `beats`, counting bars from the one playing at `position`
/// (the host's bar when it says where that started): where a loop starts.
pub fn bar_line_from(
    beats: f64,
    position: f64,
    time_signature: (u32, u32),
    host_bar_start: Option<f64>,
) -> f64 {
    let bar = beats_per_bar(time_signature);
    let bar_start = bar_start(position, time_signature, host_bar_start);
    let bars_ahead = ((beats - bar_start) / bar - 1e-9).ceil().max(0.0);
    bar_start + bars_ahead * bar
}

/// The first host beat at or after `beats`.
pub fn next_beat(beats: f64) -> f64 {
    // + 0.0 turns the -0.0 of a pre-roll's ceil into 0.0.
    (beats - ON_THE_BEAT).ceil() + 0.0
}

/// Beats (quarter notes) in a bar of this time signature.
pub fn beats_per_bar((numerator, denominator): (u32, u32)) -> f64 {
    numerator as f64 * 4.0 / denominator.max(1) as f64
}

/// Where the bar holding `beats` starts: the host's word when it gives one, else counted in
/// whole bars of this signature from beat 0.
pub fn bar_start(beats: f64, time_signature: (u32, u32), host_bar_start: Option<f64>) -> f64 {
    let bar = beats_per_bar(time_signature);
    host_bar_start.filter(|b| b.is_finite()).unwrap_or((beats / bar).floor() * bar)
}

/// Bar and beat (both from 1) of a position, as a musician reads them.
pub fn bar_and_beat(beats: f64, (numerator, denominator): (u32, u32)) -> (i64, i64) {
    let bar = beats_per_bar((numerator, denominator));
    let beat = 4.0 / denominator.max(1) as f64;
    let bar_number = (beats / bar).floor();
    let beat_in_bar = ((beats - bar_number * bar) / beat).floor();
    (bar_number as i64 + 1, beat_in_bar as i64 + 1)
}

/// Where the last `bars` bars begin on the performance clock: whole bars, counted back from the
/// start of the bar being played (`bar_clock`), so a saved file starts on a downbeat.
pub fn last_bars_start(bar_clock: f64, beats_per_bar: f64, bars: u32) -> f64 {
    bar_clock - (bars.saturating_sub(1)) as f64 * beats_per_bar
}

/// The plugin's own play / pause / stop, for the standalone program when nothing else drives
/// the music (no JACK transport with a beat position). The window sets it; the audio thread
/// reads it ([`OwnTransport::host_transport`]) and keeps the position.
#[derive(Debug, Default)]
pub struct OwnTransport {
    /// A [`TransportState::code`].
    requested: AtomicU64,
}

impl OwnTransport {
    pub fn request(&self, state: TransportState) {
        self.requested.store(state.code(), Ordering::Relaxed);
    }

    pub fn requested(&self) -> TransportState {
        TransportState::from_code(self.requested.load(Ordering::Relaxed))
    }

    /// The host's block as this transport plays it from `position` (in beats, kept by the
    /// caller), and where the next block starts. Stop plays the block as a pause, then rewinds.
    pub fn host_transport(&self, mut host: HostTransport, position: f64) -> (HostTransport, f64) {
        let requested = self.requested();
        host.playing = requested == TransportState::Playing;
        host.pos_beats = Some(position);
        host.pos_seconds = None;
        let next = match requested {
            // This block pauses where the music was; the next, back at 0, is the rewind that
            // makes the next Play start the music from its beginning.
            TransportState::Stopped => 0.0,
            TransportState::Paused => position,
            TransportState::Playing => position + host.samples as f64 / host.samples_per_beat(),
        };
        (host, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f32 = 48_000.0;
    /// Samples per beat at 120 BPM and 48 kHz.
    const SPB: f64 = 24_000.0;

    fn host(playing: bool, beats: Option<f64>) -> HostTransport {
        HostTransport {
            playing,
            tempo: Some(120.0),
            pos_beats: beats,
            pos_seconds: beats.map(|b| b / 2.0),
            sample_rate: RATE,
            samples: 512,
            time_signature: None,
            bar_start: None,
        }
    }

    /// Follows `blocks` blocks of 512 samples playing from `start` and returns the last decision.
    fn play(follower: &mut Follower, start: f64, blocks: usize) -> Decision {
        let mut decision = Decision::Continue;
        for i in 0..blocks {
            decision = follower.follow(&host(true, Some(start + i as f64 * 512.0 / SPB)));
            follower.end_block(512);
        }
        decision
    }

    #[test]
    fn play_from_a_beat_starts_the_music_on_that_beat() {
        let mut follower = Follower::default();
        assert_eq!(follower.follow(&host(true, Some(4.0))), Decision::Restart { origin: 4.0 });
        assert_eq!(follower.state(), TransportState::Playing);
    }

    #[test]
    fn play_between_beats_starts_the_music_on_the_next_beat() {
        let mut follower = Follower::default();
        assert_eq!(follower.follow(&host(true, Some(4.2))), Decision::Restart { origin: 5.0 });
    }

    #[test]
    fn pre_roll_at_a_negative_position_starts_the_music_at_beat_zero() {
        let mut follower = Follower::default();
        assert_eq!(follower.follow(&host(true, Some(-0.3))), Decision::Restart { origin: 0.0 });
        follower.end_block(512);
        // The host reaching 0 is the clock going on, not a jump.
        assert_eq!(play(&mut follower, -0.3 + 512.0 / SPB, 40), Decision::Continue);
    }

    #[test]
    fn rounded_host_positions_leave_the_clock_alone() {
        let mut follower = Follower::default();
        follower.follow(&host(true, Some(0.0)));
        follower.end_block(512);
        for i in 1..200 {
            let exact = i as f64 * 512.0 / SPB;
            // Ardour's ticks: 1/1920 beat; no seconds, so the rounded beats are all it says.
            let rounded =
                HostTransport { pos_seconds: None, ..host(true, Some((exact * 1920.0).round() / 1920.0)) };
            assert_eq!(follower.follow(&rounded), Decision::Continue);
            assert_eq!(follower.clock().unwrap().beats(), exact, "the clock is ours, counted in samples");
            follower.end_block(512);
        }
    }

    #[test]
    fn a_rounded_start_takes_its_beats_from_the_exact_seconds() {
        let exact = 3.0 - 1234.0 / SPB;
        let rounded =
            HostTransport { pos_beats: Some((exact * 1920.0).round() / 1920.0), ..host(true, Some(exact)) };
        assert_ne!(rounded.pos_beats, Some(exact));
        let mut follower = Follower::default();
        follower.follow(&rounded);
        assert!((follower.clock().unwrap().beats() - exact).abs() < 1e-12);
        assert!((follower.clock().unwrap().samples_until(3.0) - 1234.0).abs() < 1e-6);
    }

    #[test]
    fn a_host_with_only_seconds_is_followed_through_tempo_changes() {
        let mut follower = Follower::default();
        let mut seconds = 0.0;
        let mut beats = 0.0;
        for (i, tempo) in [120.0, 120.0, 90.0, 90.0, 150.0, 150.0].into_iter().enumerate() {
            let block = HostTransport {
                pos_beats: None,
                pos_seconds: Some(seconds),
                tempo: Some(tempo),
                ..host(true, None)
            };
            let decision = follower.follow(&block);
            assert_eq!(decision, if i == 0 { Decision::Restart { origin: 0.0 } } else { Decision::Continue });
            assert!((follower.clock().unwrap().beats() - beats).abs() < 1e-12);
            follower.end_block(512);
            seconds += 512.0 / RATE as f64;
            beats += 512.0 / RATE as f64 * tempo / 60.0;
        }
    }

    #[test]
    fn a_jump_while_playing_restarts_on_the_next_beat() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 100);
        assert_eq!(follower.follow(&host(true, Some(16.5))), Decision::Restart { origin: 17.0 });
        // A loop back to its start, a beat.
        follower.end_block(512);
        assert_eq!(follower.follow(&host(true, Some(8.0))), Decision::Restart { origin: 8.0 });
    }

    #[test]
    fn drifted_beats_move_the_clock_and_the_music_plays_on() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 10);
        let expected = 10.0 * 512.0 / SPB;
        // The seconds run on; the beats are further on (the host integrated a ramp).
        let drifted = HostTransport { pos_beats: Some(expected + 0.05), ..host(true, Some(expected)) };
        assert_eq!(follower.follow(&drifted), Decision::Resync);
        assert!((follower.clock().unwrap().beats() - (expected + 0.05)).abs() < 1e-12);
    }

    #[test]
    fn a_move_of_a_few_samples_is_a_move_when_the_host_gives_seconds() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 10);
        let here = 10.0 * 512.0 / SPB;
        follower.follow(&host(false, Some(here)));
        // Pre-roll: play starts 30 samples before the pause, inside the beats' rounding.
        let earlier = here - 30.0 / SPB;
        assert!(here - earlier < ROUNDING_TOLERANCE);
        assert_eq!(follower.follow(&host(true, Some(earlier))), Decision::Restart { origin: 1.0 });
    }

    #[test]
    fn stopping_pauses_and_play_at_the_same_place_resumes() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 10);
        let here = 10.0 * 512.0 / SPB;
        assert_eq!(follower.follow(&host(false, Some(here))), Decision::Pause);
        follower.end_block(512);
        assert_eq!(follower.follow(&host(false, Some(here))), Decision::Continue);
        follower.end_block(512);
        assert_eq!(follower.follow(&host(true, Some(here))), Decision::Resume);
        assert_eq!(follower.clock().unwrap().beats(), here);
    }

    #[test]
    fn play_elsewhere_after_a_pause_restarts() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 10);
        follower.follow(&host(false, Some(0.2)));
        assert_eq!(follower.follow(&host(true, Some(7.5))), Decision::Restart { origin: 8.0 });
    }

    #[test]
    fn moving_while_paused_rewinds() {
        let mut follower = Follower::default();
        play(&mut follower, 0.0, 10);
        let here = 10.0 * 512.0 / SPB;
        follower.follow(&host(false, Some(here)));
        assert_eq!(follower.follow(&host(false, Some(0.0))), Decision::Rewind);
        assert_eq!(follower.state(), TransportState::Stopped);
        assert_eq!(follower.follow(&host(true, Some(0.0))), Decision::Restart { origin: 0.0 });
    }

    #[test]
    fn without_any_position_the_clock_runs_from_zero() {
        let mut follower = Follower::default();
        let none = HostTransport { pos_beats: None, pos_seconds: None, ..host(true, None) };
        assert_eq!(follower.follow(&none), Decision::Restart { origin: 0.0 });
        follower.end_block(512);
        assert_eq!(follower.follow(&none), Decision::Continue);
        assert_eq!(follower.clock().unwrap().beats(), 512.0 / SPB);
    }

    #[test]
    fn a_tempo_change_starts_a_segment_and_samples_stay_whole() {
        let mut clock = Clock::start(0.0, None, SPB, RATE as f64);
        clock.advance(24_000);
        clock.set_samples_per_beat(SPB / 2.0);
        clock.advance(6_000);
        assert_eq!(clock.beats(), 1.5);
        assert_eq!(clock.samples_until(2.0), 6_000.0);
    }

    #[test]
    fn the_standalone_transport_plays_pauses_and_stops_back_to_the_start() {
        let own = OwnTransport::default();
        let mut follower = Follower::default();
        let mut position = 0.0;
        let mut block = |state: TransportState, follower: &mut Follower| {
            own.request(state);
            let (host, next) = own.host_transport(host(false, None), position);
            position = next;
            let decision = follower.follow(&host);
            follower.end_block(512);
            decision
        };
        assert_eq!(block(TransportState::Playing, &mut follower), Decision::Restart { origin: 0.0 });
        assert_eq!(block(TransportState::Playing, &mut follower), Decision::Continue);
        assert_eq!(block(TransportState::Paused, &mut follower), Decision::Pause);
        assert_eq!(block(TransportState::Playing, &mut follower), Decision::Resume);
        // Stop: this block pauses where the music was, the next is back at the start.
        assert_eq!(block(TransportState::Stopped, &mut follower), Decision::Pause);
        assert_eq!(block(TransportState::Stopped, &mut follower), Decision::Rewind);
        assert_eq!(block(TransportState::Playing, &mut follower), Decision::Restart { origin: 0.0 });
    }

    #[test]
    fn bars_and_beats() {
        assert_eq!(beats_per_bar((6, 8)), 3.0);
        assert_eq!(bar_start(7.5, (3, 4), None), 6.0);
        assert_eq!(bar_start(7.5, (4, 4), Some(4.0)), 4.0);
        assert_eq!(bar_and_beat(5.5, (4, 4)), (2, 2));
        assert_eq!(last_bars_start(40.0, beats_per_bar((3, 4)), 4), 31.0);
        assert_eq!(next_beat(-0.3), 0.0);
        assert_eq!(next_beat(4.0), 4.0);
        assert_eq!(next_beat(4.0 - 1e-9), 4.0);
        assert_eq!(next_beat(4.01), 5.0);
    }
}
