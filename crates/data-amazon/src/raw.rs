//! The official Amazon 2014 files: `reviews_<Category>_5.json.gz` (JSON lines) and
//! `meta_<Category>.json.gz` (Python dict literals), turned into [`Interactions`] the way P5 did:
//! an iterative k-core filter, each user's items ordered by review time (file order on ties),
//! users numbered in order of first appearance in the review file, items numbered in order of
//! first appearance when the users' sequences are read in user order.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use artifacts::dataset::{Interactions, ItemRecord};
use serde::Deserialize;

use crate::error::{Error, Result, read_line};
use crate::{open_maybe_gz, pylit};

/// One review event: who, what, when. File order is kept by the caller's vector order.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Reviewer id.
    pub user: String,
    /// Product id.
    pub asin: String,
    /// Unix time of the review (seconds).
    pub time: i64,
}

/// What [`assemble`] did, for the manifest and the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssembleReport {
    /// Reviews read.
    pub reviews_in: usize,
    /// Repeated (user, item) reviews dropped (the first is kept).
    pub duplicates_dropped: usize,
    /// k-core rounds until nothing changed.
    pub k_core_rounds: usize,
    /// Kept items that have no metadata line.
    pub items_without_meta: usize,
}

/// The two raw files of a category inside `dir`.
pub fn raw_files(dir: &Path, category: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("reviews_{category}_5.json.gz")),
        dir.join(format!("meta_{category}.json.gz")),
    )
}

/// Loads a category from its raw files.
pub fn load_raw(dir: &Path, category: &str, k: usize) -> Result<(Interactions, AssembleReport)> {
    let (reviews_path, meta_path) = raw_files(dir, category);
    let reviews = read_reviews(&reviews_path)?;
    let meta = read_meta(&meta_path)?;
    assemble(reviews, meta, k)
}

#[derive(Deserialize)]
struct ReviewLine {
    #[serde(rename = "reviewerID")]
    reviewer_id: String,
    asin: String,
    #[serde(rename = "unixReviewTime")]
    unix_review_time: i64,
}

/// Reads `reviews_<Category>_5.json.gz`: one JSON object per line with `reviewerID`, `asin`,
/// `unixReviewTime` (other fields are ignored).
pub fn read_reviews(path: &Path) -> Result<Vec<Review>> {
    let reader = open_maybe_gz(path)?;
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(read_line(path, n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: ReviewLine = serde_json::from_str(&line).map_err(|source| Error::BadJson {
            path: path.to_path_buf(),
            line: Some(n + 1),
            expected: "a JSON review with reviewerID, asin and unixReviewTime",
            source,
        })?;
        out.push(Review {
            user: r.reviewer_id,
            asin: r.asin,
            time: r.unix_review_time,
        });
    }
    if out.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            problem: "no reviews in the file",
        });
    }
    Ok(out)
}

/// Reads `meta_<Category>.json.gz`: one Python dict literal (or JSON object) per line.
pub fn read_meta(path: &Path) -> Result<HashMap<String, ItemRecord>> {
    let reader = open_maybe_gz(path)?;
    let mut out = HashMap::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(read_line(path, n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = pylit::parse(&line).map_err(|source| Error::BadLiteral {
            path: path.to_path_buf(),
            line: n + 1,
            source,
        })?;
        let record = item_from_meta(&value).map_err(|problem| Error::MalformedLine {
            path: path.to_path_buf(),
            line: n + 1,
            problem: format!("bad metadata record: {problem}"),
        })?;
        out.insert(record.asin.clone(), record);
    }
    Ok(out)
}

/// The item of one metadata record, or what is wrong with it.
fn item_from_meta(v: &serde_json::Value) -> std::result::Result<ItemRecord, &'static str> {
    let obj = v.as_object().ok_or("expected a dict")?;
    let text = |key: &str| -> Option<String> {
        obj.get(key)
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let asin = text("asin").ok_or("expected an `asin` string")?;
    let categories = match obj.get("categories") {
        None | Some(serde_json::Value::Null) => None,
        Some(c) => Some(
            serde_json::from_value::<Vec<Vec<String>>>(c.clone())
                .map_err(|_| "`categories` must be a list of lists of strings")?,
        ),
    };
    let price = match obj.get("price") {
        None | Some(serde_json::Value::Null) => None,
        Some(p) => Some(
            p.as_f64()
                .or_else(|| {
                    p.as_str()
                        .and_then(|s| s.trim_start_matches('$').parse().ok())
                })
                .ok_or("`price` must be a number")?,
        ),
    };
    Ok(ItemRecord {
        asin,
        title: text("title"),
        brand: text("brand"),
        categories,
        description: text("description"),
        price,
    })
}

/// Filters, orders and numbers reviews into [`Interactions`].
pub fn assemble(
    reviews: Vec<Review>,
    mut meta: HashMap<String, ItemRecord>,
    k: usize,
) -> Result<(Interactions, AssembleReport)> {
    let mut report = AssembleReport {
        reviews_in: reviews.len(),
        ..Default::default()
    };

    // Intern users and items (file order) and drop repeated (user, item) pairs.
    let mut user_ix: HashMap<&str, u32> = HashMap::new();
    let mut item_ix: HashMap<&str, u32> = HashMap::new();
    let mut user_names: Vec<&str> = Vec::new();
    let mut item_names: Vec<&str> = Vec::new();
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut events: Vec<(u32, u32, i64)> = Vec::with_capacity(reviews.len());
    for r in &reviews {
        let u = *user_ix.entry(&r.user).or_insert_with(|| {
            user_names.push(&r.user);
            (user_names.len() - 1) as u32
        });
        let i = *item_ix.entry(&r.asin).or_insert_with(|| {
            item_names.push(&r.asin);
            (item_names.len() - 1) as u32
        });
        if seen.insert((u, i)) {
            events.push((u, i, r.time));
        } else {
            report.duplicates_dropped += 1;
        }
    }

    let pairs: Vec<(u32, u32)> = events.iter().map(|&(u, i, _)| (u, i)).collect();
    let (keep, rounds) = k_core(&pairs, user_names.len(), item_names.len(), k);
    report.k_core_rounds = rounds;

    // Users in order of first appearance among the kept events; each user's events by time,
    // stable so that equal times keep file order.
    let mut per_user: Vec<Vec<(i64, u32)>> = vec![Vec::new(); user_names.len()];
    let mut user_order: Vec<u32> = Vec::new();
    for (e, &(u, i, t)) in events.iter().enumerate() {
        if keep[e] {
            if per_user[u as usize].is_empty() {
                user_order.push(u);
            }
            per_user[u as usize].push((t, i));
        }
    }
    if user_order.is_empty() {
        return Err(Error::EmptyCore { k });
    }

    let mut new_item: Vec<Option<u32>> = vec![None; item_names.len()];
    let mut items: Vec<ItemRecord> = Vec::new();
    let mut users = Vec::with_capacity(user_order.len());
    let mut sequences = Vec::with_capacity(user_order.len());
    for &u in &user_order {
        let events = &mut per_user[u as usize];
        events.sort_by_key(|&(t, _)| t);
        let seq = events
            .iter()
            .map(|&(_, i)| {
                *new_item[i as usize].get_or_insert_with(|| {
                    let asin = item_names[i as usize];
                    let record = meta.remove(asin).unwrap_or_else(|| {
                        report.items_without_meta += 1;
                        ItemRecord {
                            asin: asin.to_string(),
                            ..Default::default()
                        }
                    });
                    items.push(record);
                    (items.len() - 1) as u32
                })
            })
            .collect();
        users.push(user_names[u as usize].to_string());
        sequences.push(seq);
    }
    Ok((
        Interactions {
            items,
            users,
            sequences,
        },
        report,
    ))
}

/// Iterative k-core over (user, item) pairs: repeatedly drops pairs whose user or item has fewer
/// than `k` pairs left, until none does. Returns the keep mask and the number of rounds.
pub fn k_core(
    pairs: &[(u32, u32)],
    n_users: usize,
    n_items: usize,
    k: usize,
) -> (Vec<bool>, usize) {
    let mut keep = vec![true; pairs.len()];
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut uc = vec![0usize; n_users];
        let mut ic = vec![0usize; n_items];
        for (p, &(u, i)) in pairs.iter().enumerate() {
            if keep[p] {
                uc[u as usize] += 1;
                ic[i as usize] += 1;
            }
        }
        let mut changed = false;
        for (p, &(u, i)) in pairs.iter().enumerate() {
            if keep[p] && (uc[u as usize] < k || ic[i as usize] < k) {
                keep[p] = false;
                changed = true;
            }
        }
        if !changed {
            return (keep, rounds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(user: &str, asin: &str, time: i64) -> Review {
        Review {
            user: user.into(),
            asin: asin.into(),
            time,
        }
    }

    #[test]
    fn k_core_is_iterative() {
        // Item 2 has one user: dropping it leaves user 2 with one item, dropped in round 2.
        let pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (2, 2)];
        let (keep, rounds) = k_core(&pairs, 3, 3, 2);
        assert_eq!(keep, vec![true, true, true, true, false, false]);
        assert_eq!(rounds, 3);
        let (keep, _) = k_core(&pairs, 3, 3, 3);
        assert!(keep.iter().all(|&k| !k));
    }

    #[test]
    fn orders_by_time_with_file_order_on_ties_and_numbers_by_first_appearance() {
        let reviews = vec![
            rev("B", "x", 5),
            rev("A", "y", 3),
            rev("A", "x", 1),
            rev("B", "z", 5), // tie with B/x: file order keeps x first
            rev("A", "z", 2),
            rev("B", "y", 1),
            rev("A", "x", 9), // duplicate (A, x): dropped
        ];
        let (inter, report) = assemble(reviews, HashMap::new(), 1).unwrap();
        // Users by first appearance: B then A.
        assert_eq!(inter.users, vec!["B", "A"]);
        // B: y(1) x(5) z(5); A: x(1) z(2) y(3). Items numbered as first read: y=0, x=1, z=2.
        let asins: Vec<_> = inter.items.iter().map(|i| i.asin.as_str()).collect();
        assert_eq!(asins, vec!["y", "x", "z"]);
        assert_eq!(inter.sequences, vec![vec![0, 1, 2], vec![1, 2, 0]]);
        assert_eq!(report.duplicates_dropped, 1);
        assert_eq!(report.items_without_meta, 3);
    }

    #[test]
    fn empty_core_is_an_error() {
        let err = assemble(vec![rev("a", "x", 1)], HashMap::new(), 5).unwrap_err();
        assert!(matches!(err, Error::EmptyCore { k: 5 }), "{err:?}");
        assert!(format!("{err}").contains("5-core is empty"));
    }

    #[test]
    fn meta_fields() {
        let v = pylit::parse("{'asin': 'X1', 'title': ' Soap ', 'price': 4.5, 'brand': '', 'categories': [['Beauty', 'Bath']], 'description': 'Nice'}").unwrap();
        let r = item_from_meta(&v).unwrap();
        assert_eq!(r.title.as_deref(), Some("Soap"));
        assert_eq!(r.brand, None, "empty brand is absent");
        assert_eq!(r.price, Some(4.5));
        assert_eq!(
            r.categories,
            Some(vec![vec!["Beauty".to_string(), "Bath".to_string()]])
        );
        assert!(item_from_meta(&pylit::parse("{'title': 'no asin'}").unwrap()).is_err());
    }
}
