//! Statistics over seeds and the paper's numbers the reports compare against.

use artifacts::metrics::Metrics;

/// The paper's test numbers (RASTP README; docs/reference.md §6 and §9): (dataset, with RASTP?)
/// → Recall@5, Recall@10, NDCG@5, NDCG@10.
pub fn paper_numbers(dataset: &str, rastp: bool) -> Option<[f64; 4]> {
    Some(match (dataset, rastp) {
        ("beauty", false) => [0.0426, 0.0645, 0.0282, 0.0353],
        ("beauty", true) => [0.0441, 0.0656, 0.0289, 0.0358],
        ("sports", false) => [0.0196, 0.0289, 0.0128, 0.0158],
        ("sports", true) => [0.0187, 0.0278, 0.0123, 0.0153],
        ("toys", false) => [0.0345, 0.0499, 0.0238, 0.0287],
        ("toys", true) => [0.0351, 0.0504, 0.0240, 0.0289],
        _ => return None,
    })
}

/// The names of Table 2's metric columns, in [`table_metric`]'s order.
pub const TABLE_METRICS: [&str; 4] = ["Recall@5", "Recall@10", "NDCG@5", "NDCG@10"];

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `mean ± std` of `values` with `digits` decimals (just the mean for one value).
pub fn pm(values: &[f64], digits: usize) -> String {
    let (m, s) = mean_std(values);
    if values.len() > 1 {
        format!("{m:.digits$} ± {s:.digits$}")
    } else {
        format!("{m:.digits$}")
    }
}

/// Column `i` of Table 2: Recall@5, Recall@10, NDCG@5, NDCG@10 (NaN when absent).
pub fn table_metric(m: &Metrics, i: usize) -> f64 {
    match i {
        0 => m.recall.get(&5),
        1 => m.recall.get(&10),
        2 => m.ndcg.get(&5),
        _ => m.ndcg.get(&10),
    }
    .copied()
    .unwrap_or(f64::NAN)
}

/// Training time saved per window against `none`: 1 − (windows/s of none) / (windows/s).
pub fn time_saved(none_windows_per_s: f64, windows_per_s: f64) -> f64 {
    1.0 - none_windows_per_s / windows_per_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_and_pm() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(pm(&[0.5], 2), "0.50");
        assert_eq!(pm(&[1.0, 3.0], 1), "2.0 ± 1.4");
        assert!(mean_std(&[]).0.is_nan());
        assert!((time_saved(20.0, 30.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(paper_numbers("beauty", true).unwrap()[0], 0.0441);
    }
}
