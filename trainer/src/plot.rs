//! The loss plot of a run: train and validation loss against steps, drawn from metrics.csv.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

/// Reads metrics.csv and draws loss.svg.
pub fn loss_curves(metrics: &Path, out: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(metrics).with_context(|| format!("{}: cannot read", metrics.display()))?;
    let rows: Vec<(f64, f64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split(',').map(|c| c.parse::<f64>().ok());
            Some((cols.next()??, cols.next()??, cols.next()??))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let max_step = rows.iter().map(|r| r.0).fold(1.0, f64::max);
    let (low, high) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r.1).min(r.2), hi.max(r.1).max(r.2)));
    let margin = ((high - low) * 0.05).max(0.01);

    let root = SVGBackend::new(out, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Continuo training: cross-entropy per token", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step, (low - margin)..(high + margin))?;
    chart.configure_mesh().x_desc("step").y_desc("loss (nats)").draw()?;
    chart
        .draw_series(LineSeries::new(rows.iter().map(|r| (r.0, r.1)), BLUE.stroke_width(2)))?
        .label("train")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE));
    chart
        .draw_series(LineSeries::new(rows.iter().map(|r| (r.0, r.2)), RED.stroke_width(2)))?
        .label("validation")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present().with_context(|| format!("{}: cannot write the plot", out.display()))?;
    Ok(())
}
