//! What the window shows, written as JSON when `CONTINUO_EDITOR_TRACE` names a file: the text of
//! the model panel and the transport, how many notes the piano roll drew, and where the controls
//! are. The GUI tests read it to click the right places and to check what a musician would see.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::Rect;
use serde_json::json;

use crate::piano_roll::Drawn;

#[derive(Default)]
pub struct Frame {
    pub transport: String,
    pub listening: String,
    pub model: Vec<String>,
    pub cost: Vec<String>,
    pub report: String,
    pub saved: String,
    pub drawn: Drawn,
    pub controls: BTreeMap<String, [f32; 4]>,
}

impl Frame {
    pub fn control(&mut self, name: &str, rect: Rect) {
        self.controls.insert(name.to_string(), [rect.min.x, rect.min.y, rect.max.x, rect.max.y]);
    }
}

pub struct Trace {
    path: PathBuf,
    last: Instant,
}

impl Trace {
    pub fn from_env() -> Option<Trace> {
        let path = std::env::var_os("CONTINUO_EDITOR_TRACE")?;
        Some(Trace { path: PathBuf::from(path), last: Instant::now() - Duration::from_secs(1) })
    }

    pub fn write(&mut self, frame: Frame) {
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let value = json!({
            "transport": frame.transport,
            "listening": frame.listening,
            "model": frame.model,
            "cost": frame.cost,
            "report": frame.report,
            "saved": frame.saved,
            "drawn": { "generated": frame.drawn.generated, "input": frame.drawn.input },
            "controls": frame.controls,
        });
        // Whole or not at all: readers never see half a file.
        let partial = self.path.with_extension("partial");
        if std::fs::write(&partial, value.to_string()).is_ok() {
            let _ = std::fs::rename(&partial, &self.path);
        }
    }
}
