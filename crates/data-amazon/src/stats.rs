//! Dataset statistics: sizes, sparsity, sequence lengths, text coverage.

use std::fmt;

use artifacts::dataset::Interactions;
use serde::Serialize;

/// Summary statistics of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Number of (user, item) events.
    pub interactions: usize,
    /// 1 − interactions / (users × items).
    pub sparsity: f64,
    /// Sequence length distribution (items per user).
    pub seq_len: Distribution,
    /// Users whose full history exceeds 10 items.
    pub users_over_10: usize,
    /// Items with a non-empty value, per text field.
    pub coverage: Vec<(String, usize)>,
}

/// Quantiles and mean of a list of lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Smallest.
    pub min: usize,
    /// 25th percentile.
    pub p25: usize,
    /// Median.
    pub median: usize,
    /// Mean.
    pub mean: f64,
    /// 75th percentile.
    pub p75: usize,
    /// 90th percentile.
    pub p90: usize,
    /// 99th percentile.
    pub p99: usize,
    /// Largest.
    pub max: usize,
}

impl Distribution {
    /// Distribution of `values` (must not be empty); quantiles by the nearest-rank method.
    pub fn of(values: &[usize]) -> Distribution {
        let mut v = values.to_vec();
        v.sort_unstable();
        let q = |p: f64| v[(((p * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)];
        Distribution {
            min: v[0],
            p25: q(0.25),
            median: q(0.5),
            mean: v.iter().sum::<usize>() as f64 / v.len() as f64,
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            max: v[v.len() - 1],
        }
    }
}

impl DatasetStats {
    /// Computes the statistics of `inter`.
    pub fn of(inter: &Interactions) -> DatasetStats {
        let lens: Vec<usize> = inter.sequences.iter().map(Vec::len).collect();
        let interactions = inter.num_interactions();
        let cells = inter.users.len() as f64 * inter.items.len() as f64;
        let count = |f: &dyn Fn(&artifacts::dataset::ItemRecord) -> bool| {
            inter.items.iter().filter(|i| f(i)).count()
        };
        let coverage = vec![
            ("title".to_string(), count(&|i| i.title.is_some())),
            ("brand".to_string(), count(&|i| i.brand.is_some())),
            (
                "categories".to_string(),
                count(&|i| i.categories.as_ref().is_some_and(|c| !c.is_empty())),
            ),
            (
                "description".to_string(),
                count(&|i| i.description.is_some()),
            ),
            ("price".to_string(), count(&|i| i.price.is_some())),
        ];
        DatasetStats {
            users: inter.users.len(),
            items: inter.items.len(),
            interactions,
            sparsity: if cells > 0.0 {
                1.0 - interactions as f64 / cells
            } else {
                1.0
            },
            seq_len: Distribution::of(&lens),
            users_over_10: lens.iter().filter(|&&l| l > 10).count(),
            coverage,
        }
    }
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "users         {:>10}", group(self.users))?;
        writeln!(f, "items         {:>10}", group(self.items))?;
        writeln!(f, "interactions  {:>10}", group(self.interactions))?;
        writeln!(f, "sparsity      {:>10.4}%", 100.0 * self.sparsity)?;
        let d = &self.seq_len;
        writeln!(
            f,
            "items/user    min {} | p25 {} | median {} | mean {:.2} | p75 {} | p90 {} | p99 {} | max {}",
            d.min, d.p25, d.median, d.mean, d.p75, d.p90, d.p99, d.max
        )?;
        writeln!(
            f,
            "users > 10    {:>10} ({:.1}%)",
            group(self.users_over_10),
            100.0 * self.users_over_10 as f64 / self.users.max(1) as f64
        )?;
        writeln!(f, "text coverage (items with a value):")?;
        for (field, n) in &self.coverage {
            writeln!(
                f,
                "  {field:<12}{:>10} / {} ({:.1}%)",
                group(*n),
                group(self.items),
                100.0 * *n as f64 / self.items.max(1) as f64
            )?;
        }
        Ok(())
    }
}

/// 12345 → "12,345".
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifacts::dataset::ItemRecord;

    #[test]
    fn counts_and_coverage() {
        let inter = Interactions {
            items: vec![
                ItemRecord {
                    asin: "a".into(),
                    title: Some("t".into()),
                    ..Default::default()
                },
                ItemRecord {
                    asin: "b".into(),
                    ..Default::default()
                },
            ],
            users: vec!["u1".into(), "u2".into()],
            sequences: vec![vec![0, 1], vec![1]],
        };
        let s = DatasetStats::of(&inter);
        assert_eq!((s.users, s.items, s.interactions), (2, 2, 3));
        assert!((s.sparsity - 0.25).abs() < 1e-12);
        assert_eq!(s.coverage[0], ("title".to_string(), 1));
        assert_eq!(s.seq_len.max, 2);
        assert!(s.to_string().contains("interactions           3"));
    }

    #[test]
    fn quantiles_and_grouping() {
        let d = Distribution::of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!((d.min, d.p25, d.median, d.p90, d.max), (1, 3, 5, 9, 10));
        assert_eq!(group(198502), "198,502");
        assert_eq!(group(22363), "22,363");
        assert_eq!(group(5), "5");
    }
}
