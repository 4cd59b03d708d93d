//! The leave-one-out split: last item for test, second-to-last for validation, the rest for
//! training; validation and test histories keep the most recent `max_history` items.

use crate::error::{Error, Result};
use artifacts::dataset::{HeldOut, Interactions, Split};

/// Splits every user's sequence. Each user needs at least 3 items (one to train on, one to
/// validate, one to test).
pub fn leave_one_out(inter: &Interactions, max_history: usize) -> Result<Split> {
    if max_history < 1 {
        return Err(Error::InvalidConfig {
            key: "data.max_history",
            message: format!("data.max_history must be at least 1, got {max_history}"),
        });
    }
    let mut split = Split::default();
    for (u, seq) in inter.sequences.iter().enumerate() {
        let n = seq.len();
        if n < 3 {
            return Err(Error::TooFewItems {
                user: u + 1,
                items: n,
            });
        }
        let recent = |end: usize| seq[end.saturating_sub(max_history)..end].to_vec();
        split.train.push(seq[..n - 2].to_vec());
        split.valid.push(HeldOut {
            user: u as u32,
            history: recent(n - 2),
            target: seq[n - 2],
        });
        split.test.push(HeldOut {
            user: u as u32,
            history: recent(n - 1),
            target: seq[n - 1],
        });
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inter(seqs: Vec<Vec<u32>>) -> Interactions {
        Interactions {
            items: vec![Default::default(); 10],
            users: (0..seqs.len()).map(|u| u.to_string()).collect(),
            sequences: seqs,
        }
    }

    #[test]
    fn last_is_test_second_to_last_is_valid() {
        let s = leave_one_out(&inter(vec![vec![1, 2, 3, 4, 5], vec![7, 8, 9]]), 29).unwrap();
        assert_eq!(s.train, vec![vec![1, 2, 3], vec![7]]);
        assert_eq!(
            s.valid[0],
            HeldOut {
                user: 0,
                history: vec![1, 2, 3],
                target: 4
            }
        );
        assert_eq!(
            s.test[0],
            HeldOut {
                user: 0,
                history: vec![1, 2, 3, 4],
                target: 5
            }
        );
        assert_eq!(
            s.valid[1],
            HeldOut {
                user: 1,
                history: vec![7],
                target: 8
            }
        );
        assert_eq!(
            s.test[1],
            HeldOut {
                user: 1,
                history: vec![7, 8],
                target: 9
            }
        );
    }

    #[test]
    fn histories_keep_the_most_recent_items() {
        let s = leave_one_out(&inter(vec![(0..9).collect()]), 3).unwrap();
        assert_eq!(s.valid[0].history, vec![4, 5, 6]);
        assert_eq!(s.test[0].history, vec![5, 6, 7]);
        assert_eq!(
            s.train[0],
            (0..7).collect::<Vec<_>>(),
            "training keeps the full prefix"
        );
    }

    #[test]
    fn too_short_sequences_are_an_error() {
        let err = leave_one_out(&inter(vec![vec![1, 2, 3], vec![1, 2]]), 5).unwrap_err();
        assert!(
            matches!(err, Error::TooFewItems { user: 2, items: 2 }),
            "{err:?}"
        );
        let m = err.to_string();
        assert!(m.contains("user 2 has 2 item(s)"), "{m}");
        assert!(matches!(
            leave_one_out(&inter(vec![vec![1, 2, 3]]), 0),
            Err(Error::InvalidConfig {
                key: "data.max_history",
                ..
            })
        ));
    }
}
