//! The events generated ahead of the playhead, waiting for their time: note-ons and note-offs on
//! the music's grid, oldest first. A ring allocated once, so the audio thread only moves indices.
//!
//! The generator fills it (up to a beat ahead), the player empties it block by block as the
//! clock reaches each event, and a musician's late note takes back what was generated after it.

use continuo_engine::vocab::{NoteEvent, NoteEventKind, STEPS_PER_BEAT};

/// Events generated ahead and not yet played; a chord-heavy beat needs a few dozen.
pub const QUEUE_CAPACITY: usize = 512;
/// How far ahead of the playhead the generator runs, in grid steps (one beat): enough that a
/// block never has to catch up on more than its cap.
pub const LOOKAHEAD_STEPS: u64 = STEPS_PER_BEAT as u64;

pub struct EventQueue {
    events: Vec<NoteEvent>,
    /// Index of the oldest event, and how many there are.
    start: usize,
    len: usize,
}

impl EventQueue {
    pub fn new() -> EventQueue {
        let silence = NoteEvent { step: 0, kind: NoteEventKind::Off { pitch: 0 } };
        EventQueue { events: vec![silence; QUEUE_CAPACITY], start: 0, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events that still fit.
    pub fn room(&self) -> usize {
        QUEUE_CAPACITY - self.len
    }

    /// Appends `event` if there is room; a full queue drops it (generation stops well before).
    pub fn push(&mut self, event: NoteEvent) {
        if self.len < QUEUE_CAPACITY {
            self.events[(self.start + self.len) % QUEUE_CAPACITY] = event;
            self.len += 1;
        }
    }

    /// The oldest event.
    pub fn front(&self) -> Option<NoteEvent> {
        (self.len > 0).then(|| self.events[self.start])
    }

    pub fn pop_front(&mut self) {
        if self.len > 0 {
            self.start = (self.start + 1) % QUEUE_CAPACITY;
            self.len -= 1;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }

    /// Holds exactly `events` (at most [`QUEUE_CAPACITY`]): a remembered opening, replayed.
    pub fn replace_with(&mut self, events: &[NoteEvent]) {
        let len = events.len().min(QUEUE_CAPACITY);
        self.events[..len].copy_from_slice(&events[..len]);
        self.start = 0;
        self.len = len;
    }

    /// Drops the `count` events queued last: the generator went back to before them.
    pub fn drop_newest(&mut self, count: usize) {
        self.len -= count.min(self.len);
    }

    /// Drops the events after grid step `step`: the generator went back there, and generates
    /// them again.
    pub fn drop_after(&mut self, step: u64) {
        while self.len > 0 && self.events[(self.start + self.len - 1) % QUEUE_CAPACITY].step > step {
            self.len -= 1;
        }
    }
}

impl Default for EventQueue {
    fn default() -> Self {
        EventQueue::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(step: u64) -> NoteEvent {
        NoteEvent { step, kind: NoteEventKind::On { pitch: 60, velocity: 80 } }
    }

    #[test]
    fn events_leave_in_order_and_a_late_note_takes_back_what_came_after_it() {
        let mut queue = EventQueue::new();
        for step in 0..QUEUE_CAPACITY as u64 + 3 {
            queue.push(on(step));
        }
        assert_eq!((queue.len(), queue.room()), (QUEUE_CAPACITY, 0), "a full queue drops");
        queue.pop_front();
        queue.push(on(1000));
        assert_eq!(queue.front(), Some(on(1)), "the ring wraps");
        queue.drop_after(10);
        assert_eq!(queue.len(), 10);
        queue.replace_with(&[on(5), on(7)]);
        assert_eq!((queue.front(), queue.len()), (Some(on(5)), 2));
        queue.clear();
        assert!(queue.is_empty() && queue.front().is_none());
    }
}
