//! Progress bars for long work, in one style. Drawn on stderr only when it is a terminal, so
//! logs and tests stay clean; the closing summaries are printed either way.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items of `unit` ("files", "steps"); `{msg}` carries live numbers.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template").progress_chars("=> "));
    bar
}

/// Prints a line above the bar, or plainly when the bar is hidden (not a terminal).
pub fn log(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// Seconds as a person reads them: "42s", "3m 05s", "1h 02m".
pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}
