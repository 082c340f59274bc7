//! The trainer's plots, as SVG: a run's loss curves (drawn from metrics.csv), and eval's
//! distance densities of each feature.

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

/// Panels in a row of the densities plot.
const PANELS_PER_ROW: usize = 5;
/// Every how many grid points a density curve is drawn: a quarter of eval's grid is smooth to
/// the eye, and the file a quarter the size.
const CURVE_STRIDE: usize = 4;
/// The generated pieces' own distances: a green dark enough to tell from the others on white.
const GENERATED_GREEN: RGBColor = RGBColor(0, 140, 0);

/// One panel of the densities plot: a feature's distance densities.
pub struct DensityPanel<'a> {
    pub title: String,
    /// The distances the densities are evaluated at.
    pub x: &'a [f64],
    /// The density of the reference's own distances (intra-set), drawn blue.
    pub intra: &'a [f64],
    /// The density of the generated-to-reference distances (inter-set), drawn red.
    pub inter: &'a [f64],
    /// The distances among the generated pieces and their density, on a grid of their own (it is
    /// smoothed for its comparison with the reference's), drawn green; None when fewer than two
    /// pieces were generated.
    pub generated_intra: Option<(&'a [f64], &'a [f64])>,
}

/// One small panel per feature: the density of the reference's own distances (intra-set), of
/// the generated-to-reference distances (inter-set) and of the generated pieces' own distances.
/// Where the red curve meets the blue the model's music is like the data; where the green does,
/// its pieces differ from one another as much as the data's do, and a green curve left of the
/// blue means pieces more alike than the data's.
pub fn feature_densities(panels: &[DensityPanel], out: &Path) -> Result<()> {
    let rows = panels.len().div_ceil(PANELS_PER_ROW).max(1);
    let root = SVGBackend::new(out, (2000, 40 + 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "Distances between pieces: within the data (blue), from generated pieces to the data (red), \
         among the generated pieces (green)",
        ("sans-serif", 20),
    )?;
    for (panel, area) in panels.iter().zip(root.split_evenly((rows, PANELS_PER_ROW))) {
        let (generated_x, generated_y) = panel.generated_intra.unwrap_or((&[], &[]));
        // Both grids run upwards: the panel spans the lowest first point to the highest last.
        let ends: Vec<f64> = [panel.x, generated_x]
            .iter()
            .flat_map(|x| x.first().into_iter().chain(x.last()))
            .copied()
            .collect();
        let left = ends.iter().copied().fold(f64::INFINITY, f64::min);
        let right = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (left, right) = if left < right { (left, right) } else { (0.0, 1.0) };
        let top = panel.intra.iter().chain(panel.inter).chain(generated_y).copied().fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, ("sans-serif", 13))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(left..right, 0.0..(top * 1.05).max(1e-9))?;
        chart.configure_mesh().x_desc("distance").x_labels(5).y_labels(4).light_line_style(WHITE).draw()?;
        let curve = |x: &[f64], values: &[f64]| {
            x.iter().copied().zip(values.iter().copied()).step_by(CURVE_STRIDE).collect::<Vec<_>>()
        };
        chart.draw_series(LineSeries::new(curve(panel.x, panel.intra), BLUE.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(curve(panel.x, panel.inter), RED.stroke_width(2)))?;
        chart
            .draw_series(LineSeries::new(curve(generated_x, generated_y), GENERATED_GREEN.stroke_width(2)))?;
    }
    root.present().with_context(|| format!("{}: cannot write the plot", out.display()))?;
    Ok(())
}
