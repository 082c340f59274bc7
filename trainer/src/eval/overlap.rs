//! How close one set of feature values is to another, the way Yang and Lerch (2018) measure it.
//!
//! The intra-set distances (every pair inside the reference set) say how much the reference
//! varies within itself; the inter-set distances (every generated value against every reference
//! value) say how far the generated set sits from it. If the generated set is like the reference,
//! the two distance distributions coincide. Each is smoothed by a Gaussian kernel density
//! estimate, and two numbers are read off the pair: the overlapping area (1 when they coincide, 0
//! when they never meet) and the Kullback-Leibler divergence of the inter-set density from the
//! intra-set one (0 when they coincide).
//!
//! The same two numbers compare the generated set's own intra-set distances with the
//! reference's: whether the generated pieces differ from one another as much as the reference
//! pieces do. (Yang and Lerch, and their mgeval code, set each set's intra-set density against
//! the inter-set one; setting the two intra-set densities against each other asks the question
//! directly, and leaves out how far the generated set sits from the reference, which the first
//! comparison measures.) Beside it, the spread: the mean distance between two generated pieces
//! over the mean between two reference pieces.
//!
//! Owns the distances, the densities and those numbers; a value is a vector of numbers
//! (one, or twelve for a histogram) and nothing here knows what it measures.

use serde::Serialize;

/// Points of the grid the densities are evaluated and integrated on.
pub const GRID_POINTS: usize = 1024;
/// The grid reaches this many bandwidths beyond the smallest and largest distance, where a
/// Gaussian kernel has shed all but 6e-5 of its mass.
const GRID_MARGIN_BANDWIDTHS: f64 = 4.0;
/// Kernels are summed out to this many bandwidths; beyond it they add less than 4e-6 of their
/// peak.
const KERNEL_REACH_BANDWIDTHS: f64 = 5.0;
/// A density below this counts as this in the divergence, so sets that never meet give a large
/// but finite number instead of infinity.
const DENSITY_FLOOR: f64 = 1e-10;

/// Euclidean distances between every pair of values of one set.
pub fn intra_set_distances(set: &[&[f64]]) -> Vec<f64> {
    let mut distances = Vec::with_capacity(set.len() * set.len().saturating_sub(1) / 2);
    for (i, a) in set.iter().enumerate() {
        distances.extend(set[i + 1..].iter().map(|b| euclidean(a, b)));
    }
    distances
}

/// Euclidean distances between every value of `generated` and every value of `reference`.
pub fn inter_set_distances(generated: &[&[f64]], reference: &[&[f64]]) -> Vec<f64> {
    generated.iter().flat_map(|g| reference.iter().map(move |r| euclidean(g, r))).collect()
}

/// How far apart a set's values lie against a reference's: the mean of its intra-set distances
/// over the mean of the reference's. 1 when the set varies as much as the reference, 0 when its
/// values are all one, above 1 when they lie further apart. None when either set has no pair, or
/// when the reference's values are all one and the set's are not (both all one spread alike: 1).
pub fn spread(intra: &[f64], reference_intra: &[f64]) -> Option<f64> {
    let (mine, theirs) = (mean_distance(intra)?, mean_distance(reference_intra)?);
    if theirs > 0.0 {
        Some(mine / theirs)
    } else if mine == 0.0 {
        Some(1.0)
    } else {
        None
    }
}

/// The mean of a set of distances; None when there are none.
pub fn mean_distance(distances: &[f64]) -> Option<f64> {
    (!distances.is_empty()).then(|| distances.iter().sum::<f64>() / distances.len() as f64)
}

fn euclidean(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
}

/// Silverman's rule of thumb for a Gaussian kernel in one dimension, (4 / 3n)^(1/5) times the
/// sample's standard deviation: the bandwidth that would be best were the sample normal and
/// `n` values long. Zero for a sample with no spread.
pub fn silverman_bandwidth(sample: &[f64], n: usize) -> f64 {
    if sample.len() < 2 || n == 0 {
        return 0.0;
    }
    let len = sample.len() as f64;
    let mean = sample.iter().sum::<f64>() / len;
    let sd = (sample.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (len - 1.0)).sqrt();
    (4.0 / (3.0 * n as f64)).powf(0.2) * sd
}

/// Both densities on one grid, as drawn in the report's plot: `intra` the reference's own
/// distances, `inter` those compared with them (generated to reference, or between two generated
/// pieces).
#[derive(Debug, Clone, Default)]
pub struct Densities {
    pub x: Vec<f64>,
    pub intra: Vec<f64>,
    pub inter: Vec<f64>,
}

/// The intra-set and inter-set distance distributions of one feature, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The area under both densities at once: 1 when they coincide, 0 when they never meet.
    pub overlapping_area: f64,
    /// KL(intra || inter), in nats.
    pub kl_divergence: f64,
    pub intra_bandwidth: f64,
    pub inter_bandwidth: f64,
    #[serde(skip)]
    pub densities: Densities,
}

/// Smooths both distance sets and measures their overlap and divergence, by the trapezoid rule
/// on a grid spanning both. `inter` is the inter-set distances, or the generated set's own
/// intra-set distances when the two sets' variety is compared. None when either set is empty.
pub fn compare(intra: &[f64], inter: &[f64]) -> Option<Comparison> {
    if intra.is_empty() || inter.is_empty() {
        return None;
    }
    let low = intra.iter().chain(inter).copied().fold(f64::INFINITY, f64::min);
    let high = intra.iter().chain(inter).copied().fold(f64::NEG_INFINITY, f64::max);
    // A set with no spread (every distance equal, or a single one) gets a narrow kernel rather
    // than none: a hundredth of the span of both sets, or of the value itself when that span is
    // nothing too.
    let no_spread = if high > low { (high - low) / 100.0 } else { 1e-3 * high.abs().max(1.0) };
    // Both are smoothed as if they held as many distances as the shorter: Silverman's
    // bandwidth shrinks with the sample, and 4,433 songs' 9.8 million intra-set distances
    // against 48 pieces' 213,000 inter-set ones would draw an integer feature's distances
    // (distinct pitches, range) as sharp spikes against blunt ones, whose overlap is low however
    // alike the music is: 48 of the folk tunes themselves scored 0.837 against all of them so
    // (0.931 smoothed alike). Each keeps its own spread, as in Yang and Lerch, whose sets are of one size.
    let n = intra.len().min(inter.len());
    let chosen = |sample: &[f64]| match silverman_bandwidth(sample, n) {
        h if h > 0.0 => h,
        _ => no_spread,
    };
    let (intra_h, inter_h) = (chosen(intra), chosen(inter));
    let margin = GRID_MARGIN_BANDWIDTHS * intra_h.max(inter_h);
    let (low, high) = (low - margin, high + margin);
    let dx = (high - low) / (GRID_POINTS - 1) as f64;
    // A kernel narrower than the grid's step could not be integrated on it.
    let (intra_h, inter_h) = (intra_h.max(dx), inter_h.max(dx));
    let x: Vec<f64> = (0..GRID_POINTS).map(|i| low + i as f64 * dx).collect();
    let p = density_on_grid(intra, intra_h, low, dx);
    let q = density_on_grid(inter, inter_h, low, dx);

    let both: Vec<f64> = p.iter().zip(&q).map(|(a, b)| a.min(*b)).collect();
    let divergence: Vec<f64> = p
        .iter()
        .zip(&q)
        .map(|(&a, &b)| if a > DENSITY_FLOOR { a * (a / b.max(DENSITY_FLOOR)).ln() } else { 0.0 })
        .collect();
    Some(Comparison {
        overlapping_area: integrate(&both, dx).clamp(0.0, 1.0),
        kl_divergence: integrate(&divergence, dx).max(0.0),
        intra_bandwidth: intra_h,
        inter_bandwidth: inter_h,
        densities: Densities { x, intra: p, inter: q },
    })
}

/// A Gaussian kernel density estimate of `sample` with bandwidth `h`, on the grid of
/// [`GRID_POINTS`] points from `low` in steps of `dx`. Each value's unit of mass is first shared
/// between its two nearest grid points (linear binning), so the cost grows with the grid, not
/// with the sample: the chorales' intra-set distances alone are 80,000. The result integrates
/// to exactly 1 on the grid.
fn density_on_grid(sample: &[f64], h: f64, low: f64, dx: f64) -> Vec<f64> {
    let mut mass = vec![0.0; GRID_POINTS];
    for &value in sample {
        let position = ((value - low) / dx).clamp(0.0, (GRID_POINTS - 1) as f64);
        let left = (position.floor() as usize).min(GRID_POINTS - 2);
        let share = position - left as f64;
        mass[left] += 1.0 - share;
        mass[left + 1] += share;
    }
    let reach = ((KERNEL_REACH_BANDWIDTHS * h / dx).ceil() as usize).min(GRID_POINTS - 1);
    let kernel: Vec<f64> = (0..=reach).map(|k| (-0.5 * (k as f64 * dx / h).powi(2)).exp()).collect();
    let mut density = vec![0.0; GRID_POINTS];
    for (j, &m) in mass.iter().enumerate().filter(|(_, &m)| m > 0.0) {
        for i in j.saturating_sub(reach)..(j + reach + 1).min(GRID_POINTS) {
            density[i] += m * kernel[i.abs_diff(j)];
        }
    }
    let total = integrate(&density, dx);
    density.iter_mut().for_each(|d| *d /= total);
    density
}

/// The trapezoid rule over values `dx` apart.
fn integrate(values: &[f64], dx: f64) -> f64 {
    values.windows(2).map(|w| (w[0] + w[1]) * 0.5 * dx).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(n: usize, centre: f64) -> Vec<f64> {
        (0..n).map(|i| centre + (i % 7) as f64 * 0.5).collect()
    }

    #[test]
    fn identical_samples_overlap_fully_and_do_not_diverge() {
        let a = spread(200, 3.0);
        let c = compare(&a, &a).unwrap();
        assert!((c.overlapping_area - 1.0).abs() < 1e-9, "{}", c.overlapping_area);
        assert!(c.kl_divergence.abs() < 1e-9, "{}", c.kl_divergence);
    }

    #[test]
    fn distant_samples_do_not_overlap_and_diverge_far() {
        let (a, far) = (spread(200, 3.0), spread(200, 100.0));
        let c = compare(&a, &far).unwrap();
        assert!(c.overlapping_area < 1e-3, "{}", c.overlapping_area);
        assert!(c.kl_divergence > 10.0, "{}", c.kl_divergence);
        // Half a spread apart is in between.
        let near = spread(200, 4.5);
        let middle = compare(&a, &near).unwrap();
        assert!((0.2..0.8).contains(&middle.overlapping_area), "{}", middle.overlapping_area);
        assert!(middle.kl_divergence > 0.1 && middle.kl_divergence < c.kl_divergence);
    }

    #[test]
    fn densities_integrate_to_one_even_without_spread() {
        for (intra, inter) in [(vec![0.0; 10], vec![0.0; 10]), (vec![2.0], vec![0.0, 5.0, 9.0])] {
            let c = compare(&intra, &inter).unwrap();
            let d = &c.densities;
            let dx = d.x[1] - d.x[0];
            assert!((integrate(&d.intra, dx) - 1.0).abs() < 1e-9);
            assert!((integrate(&d.inter, dx) - 1.0).abs() < 1e-9);
            assert!(c.intra_bandwidth > 0.0 && c.overlapping_area.is_finite() && c.kl_divergence.is_finite());
        }
        // Two sets that are one and the same constant coincide.
        assert!((compare(&[0.0; 10], &[0.0; 3]).unwrap().overlapping_area - 1.0).abs() < 1e-9);
        assert!(compare(&[], &[1.0]).is_none());
    }

    #[test]
    fn silverman_matches_its_formula() {
        // sd of 0..=9 (n - 1 in the denominator) is sqrt(55/6).
        let sample: Vec<f64> = (0..10).map(f64::from).collect();
        let expected = (4.0f64 / 30.0).powf(0.2) * (55.0f64 / 6.0).sqrt();
        assert!((silverman_bandwidth(&sample, 10) - expected).abs() < 1e-12);
        assert_eq!(silverman_bandwidth(&[4.0; 5], 5), 0.0);
    }

    #[test]
    fn a_few_pieces_of_the_reference_overlap_it_like_the_reference_itself() {
        // Integer values (as distinct pitches are), 48 of them drawn from the same eleven as a
        // reference of 3,000: 144,000 inter-set distances against 4.5 million intra-set ones.
        // Each smoothed by its own sample's size they would overlap 0.67; smoothed alike, 0.99.
        let value = |i: usize| ((i * 7919) % 7 + (i * 104_729) % 5) as f64;
        let reference: Vec<[f64; 1]> = (0..3000).map(|i| [value(i)]).collect();
        let few: Vec<[f64; 1]> = (0..48).map(|i| [value(i * 31 + 5)]).collect();
        let refs: Vec<&[f64]> = reference.iter().map(|v| &v[..]).collect();
        let scored: Vec<&[f64]> = few.iter().map(|v| &v[..]).collect();
        let intra = intra_set_distances(&refs);
        let c = compare(&intra, &inter_set_distances(&scored, &refs)).unwrap();
        assert!(c.overlapping_area > 0.95, "{}", c.overlapping_area);
        assert_eq!(c.intra_bandwidth, silverman_bandwidth(&intra, 48 * 3000));
    }

    /// The existing tests' integer values (as distinct pitches are): `value(i)` for any i is
    /// one draw from the same distribution.
    fn drawn(indices: impl Iterator<Item = usize>, scale: f64) -> Vec<[f64; 1]> {
        let value = |i: usize| ((i * 7919) % 7 + (i * 104_729) % 5) as f64;
        indices.map(|i| [scale * value(i)]).collect()
    }

    fn as_set(values: &[[f64; 1]]) -> Vec<&[f64]> {
        values.iter().map(|v| &v[..]).collect()
    }

    /// OA_g and the spread of `generated` against 3,000 reference values.
    fn variety(generated: &[[f64; 1]]) -> (f64, Option<f64>) {
        let reference = drawn(0..3000, 1.0);
        let reference_intra = intra_set_distances(&as_set(&reference));
        let intra = intra_set_distances(&as_set(generated));
        (compare(&reference_intra, &intra).unwrap().overlapping_area, super::spread(&intra, &reference_intra))
    }

    #[test]
    fn a_sample_of_the_reference_varies_like_the_reference() {
        // 48 draws from the reference's own distribution: 1,128 distances among them against
        // 4.5 million among the reference.
        let (oa, spread) = variety(&drawn((0..48).map(|i| i * 31 + 5), 1.0));
        assert!(oa > 0.9, "{oa}");
        assert!((spread.unwrap() - 1.0).abs() < 0.1, "{spread:?}");
    }

    #[test]
    fn identical_pieces_have_no_spread() {
        let copies = vec![[4.0]; 48];
        let (oa, spread) = variety(&copies);
        assert_eq!(spread, Some(0.0));
        assert!(oa < 0.1, "{oa}");
    }

    #[test]
    fn a_set_wider_than_the_reference_spreads_more_than_it() {
        // The same draws stretched threefold lie three times as far apart.
        let (oa, spread) = variety(&drawn((0..48).map(|i| i * 31 + 5), 3.0));
        assert!((spread.unwrap() - 3.0).abs() < 0.3, "{spread:?}");
        assert!(oa < 0.6, "{oa}");
    }

    #[test]
    fn spread_is_undefined_only_without_pairs_or_against_a_constant_reference() {
        assert_eq!(super::spread(&[2.0, 4.0], &[1.0, 5.0]), Some(1.0));
        assert_eq!(super::spread(&[0.0, 0.0], &[0.0]), Some(1.0));
        assert_eq!(super::spread(&[1.0], &[0.0, 0.0]), None);
        assert_eq!(super::spread(&[], &[1.0]), None);
        assert_eq!(super::spread(&[1.0], &[]), None);
    }

    #[test]
    fn distances_pair_every_value_once() {
        let (a, b, c) = ([0.0, 0.0], [3.0, 4.0], [6.0, 8.0]);
        let set: Vec<&[f64]> = vec![&a, &b, &c];
        assert_eq!(intra_set_distances(&set), vec![5.0, 10.0, 5.0]);
        assert_eq!(inter_set_distances(&set[..1], &set), vec![0.0, 5.0, 10.0]);
    }
}
