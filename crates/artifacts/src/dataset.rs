//! The `Dataset` artifact: items, users, chronological interactions and the leave-one-out split,
//! as parquet files.
//!
//! | file | columns |
//! |---|---|
//! | `items.parquet` | item (u32), asin, title, brand, categories (JSON list of paths), description, price |
//! | `users.parquet` | user (u32), reviewer_id |
//! | `interactions.parquet` | user, item, position (u32; position = order in the user's history) |
//! | `train.parquet` | user, items (list of u32): the history without its last two items |
//! | `valid.parquet`, `test.parquet` | user, history (list of u32, at most `max_history`), target (u32) |
//!
//! Ids are 0-based and contiguous (`item` = P5 id − 1), as the model's tensors need; the command
//! line shows the 1-based P5 ids.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io};

/// Version of the files above; bump when their meaning changes.
pub const DATASET_SCHEMA_VERSION: u32 = 1;

/// The names of the artifact's files inside its directory.
pub mod files {
    /// Item metadata, one row per item id.
    pub const ITEMS: &str = "items.parquet";
    /// Original reviewer ids, one row per user id.
    pub const USERS: &str = "users.parquet";
    /// Every (user, item, position) event.
    pub const INTERACTIONS: &str = "interactions.parquet";
    /// Per user: the history without its last two items.
    pub const TRAIN: &str = "train.parquet";
    /// Per user: history and the second-to-last item as target.
    pub const VALID: &str = "valid.parquet";
    /// Per user: history and the last item as target.
    pub const TEST: &str = "test.parquet";
    /// Dataset statistics (written by the `data` stage).
    pub const STATS: &str = "stats.json";
}

/// Item metadata, as far as the source has it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Amazon product id.
    pub asin: String,
    /// Product title.
    pub title: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category paths from the root, e.g. `[["Beauty", "Makeup", "Nails"]]`.
    pub categories: Option<Vec<Vec<String>>>,
    /// Free-text description.
    pub description: Option<String>,
    /// Price in US dollars.
    pub price: Option<f64>,
}

/// Users, items and each user's items in time order. Index = 0-based id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interactions {
    /// Items; `items[i]` describes item id `i`.
    pub items: Vec<ItemRecord>,
    /// Original reviewer ids; `users[u]` is user id `u`.
    pub users: Vec<String>,
    /// `sequences[u]` = user `u`'s item ids, oldest first.
    pub sequences: Vec<Vec<u32>>,
}

impl Interactions {
    /// Total number of (user, item) events.
    pub fn num_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// Checks the invariants every stage relies on.
    pub fn validate(&self) -> Result<()> {
        if self.users.len() != self.sequences.len() {
            return Err(Error::InvalidDataset(format!(
                "{} user ids but {} sequences",
                self.users.len(),
                self.sequences.len()
            )));
        }
        if self.sequences.is_empty() {
            return Err(Error::InvalidDataset(
                "the dataset has no users".to_string(),
            ));
        }
        let n = self.items.len() as u32;
        for (u, seq) in self.sequences.iter().enumerate() {
            if let Some(&bad) = seq.iter().find(|&&i| i >= n) {
                return Err(Error::UnknownItem {
                    user: u + 1,
                    item: bad,
                    items: n,
                });
            }
        }
        Ok(())
    }
}

/// A prediction example: the most recent history before a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOut {
    /// User id (0-based).
    pub user: u32,
    /// History items, oldest first, at most `max_history`.
    pub history: Vec<u32>,
    /// The item to predict.
    pub target: u32,
}

/// A fixed seeded subsample of `n` held-out users (all when `n` is 0 or at least their
/// number), in their original order: the same users for every variant and seed given the seed.
pub fn subsample(users: &[HeldOut], n: usize, seed: u64) -> Vec<HeldOut> {
    if n == 0 || n >= users.len() {
        return users.to_vec();
    }
    let mut idx: Vec<usize> = (0..users.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(crate::hashing::mix(
        seed, 4, 0,
    )));
    let mut idx = idx[..n].to_vec();
    idx.sort_unstable();
    idx.into_iter().map(|i| users[i].clone()).collect()
}

/// The leave-one-out split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    /// Per user (index = user id): the sequence without its last two items.
    pub train: Vec<Vec<u32>>,
    /// One per user: target = second-to-last item.
    pub valid: Vec<HeldOut>,
    /// One per user: target = last item.
    pub test: Vec<HeldOut>,
}

/// The whole `Dataset` artifact in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Users, items, sequences.
    pub interactions: Interactions,
    /// Leave-one-out split of the sequences.
    pub split: Split,
}

impl Dataset {
    /// Writes the parquet files into `dir` (an artifact writer's directory).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let inter = &self.interactions;
        let items = &inter.items;
        let categories: Vec<Option<String>> = items
            .iter()
            .map(|i| {
                i.categories
                    .as_ref()
                    .map(|c| serde_json::to_string(c).expect("strings"))
            })
            .collect();
        let mut items_df = DataFrame::new_infer_height(vec![
            col_u32("item", (0..items.len() as u32).collect()),
            Column::new(
                "asin".into(),
                items.iter().map(|i| i.asin.as_str()).collect::<Vec<_>>(),
            ),
            opt_str("title", items.iter().map(|i| i.title.as_deref()).collect()),
            opt_str("brand", items.iter().map(|i| i.brand.as_deref()).collect()),
            opt_str(
                "categories",
                categories.iter().map(|c| c.as_deref()).collect(),
            ),
            opt_str(
                "description",
                items.iter().map(|i| i.description.as_deref()).collect(),
            ),
            Column::new(
                "price".into(),
                items.iter().map(|i| i.price).collect::<Vec<_>>(),
            ),
        ])?;
        write_parquet(&mut items_df, &dir.join(files::ITEMS))?;

        let mut users_df = DataFrame::new_infer_height(vec![
            col_u32("user", (0..inter.users.len() as u32).collect()),
            Column::new(
                "reviewer_id".into(),
                inter.users.iter().map(String::as_str).collect::<Vec<_>>(),
            ),
        ])?;
        write_parquet(&mut users_df, &dir.join(files::USERS))?;

        let (mut us, mut is, mut ps) = (Vec::new(), Vec::new(), Vec::new());
        for (u, seq) in inter.sequences.iter().enumerate() {
            for (p, &i) in seq.iter().enumerate() {
                us.push(u as u32);
                is.push(i);
                ps.push(p as u32);
            }
        }
        let mut inter_df = DataFrame::new_infer_height(vec![
            col_u32("user", us),
            col_u32("item", is),
            col_u32("position", ps),
        ])?;
        write_parquet(&mut inter_df, &dir.join(files::INTERACTIONS))?;

        let mut train_df = DataFrame::new_infer_height(vec![
            col_u32("user", (0..self.split.train.len() as u32).collect()),
            col_lists("items", &self.split.train),
        ])?;
        write_parquet(&mut train_df, &dir.join(files::TRAIN))?;
        for (name, held) in [
            (files::VALID, &self.split.valid),
            (files::TEST, &self.split.test),
        ] {
            let histories: Vec<Vec<u32>> = held.iter().map(|h| h.history.clone()).collect();
            let mut df = DataFrame::new_infer_height(vec![
                col_u32("user", held.iter().map(|h| h.user).collect()),
                col_lists("history", &histories),
                col_u32("target", held.iter().map(|h| h.target).collect()),
            ])?;
            write_parquet(&mut df, &dir.join(name))?;
        }
        Ok(())
    }

    /// Reads a `Dataset` artifact directory.
    pub fn read(dir: &Path) -> Result<Dataset> {
        let items_df = read_parquet(&dir.join(files::ITEMS))?;
        let asin = items_df.column("asin")?.str()?;
        let title = items_df.column("title")?.str()?;
        let brand = items_df.column("brand")?.str()?;
        let cats = items_df.column("categories")?.str()?;
        let desc = items_df.column("description")?.str()?;
        let price = items_df.column("price")?.f64()?;
        let mut items = Vec::with_capacity(items_df.height());
        for r in 0..items_df.height() {
            let categories = match cats.get(r) {
                Some(json) => Some(serde_json::from_str(json).map_err(|e| Error::BadCell {
                    file: files::ITEMS,
                    row: r,
                    problem: format!("bad categories ({e})"),
                })?),
                None => None,
            };
            items.push(ItemRecord {
                asin: asin.get(r).unwrap_or_default().to_string(),
                title: title.get(r).map(str::to_string),
                brand: brand.get(r).map(str::to_string),
                categories,
                description: desc.get(r).map(str::to_string),
                price: price.get(r),
            });
        }

        let users_df = read_parquet(&dir.join(files::USERS))?;
        let users: Vec<String> = users_df
            .column("reviewer_id")?
            .str()?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect();

        let inter_df = read_parquet(&dir.join(files::INTERACTIONS))?;
        let mut sequences = vec![Vec::new(); users.len()];
        let u = inter_df.column("user")?.u32()?;
        let i = inter_df.column("item")?.u32()?;
        for (u, i) in u.into_no_null_iter().zip(i.into_no_null_iter()) {
            sequences
                .get_mut(u as usize)
                .ok_or(Error::UnknownUser {
                    file: files::INTERACTIONS,
                    user: u,
                    users_file: files::USERS,
                })?
                .push(i);
        }

        let train_df = read_parquet(&dir.join(files::TRAIN))?;
        let train = read_lists(train_df.column("items")?)?;
        let mut held = Vec::new();
        for name in [files::VALID, files::TEST] {
            let df = read_parquet(&dir.join(name))?;
            let users = df.column("user")?.u32()?;
            let histories = read_lists(df.column("history")?)?;
            let targets = df.column("target")?.u32()?;
            held.push(
                users
                    .into_no_null_iter()
                    .zip(histories)
                    .zip(targets.into_no_null_iter())
                    .map(|((user, history), target)| HeldOut {
                        user,
                        history,
                        target,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let test = held.pop().expect("two splits");
        let valid = held.pop().expect("two splits");
        let dataset = Dataset {
            interactions: Interactions {
                items,
                users,
                sequences,
            },
            split: Split { train, valid, test },
        };
        dataset
            .interactions
            .validate()
            .map_err(|e| e.in_path(dir))?;
        Ok(dataset)
    }
}

fn col_u32(name: &str, values: Vec<u32>) -> Column {
    Column::new(name.into(), values)
}

fn opt_str(name: &str, values: Vec<Option<&str>>) -> Column {
    Column::new(name.into(), values)
}

fn col_lists(name: &str, lists: &[Vec<u32>]) -> Column {
    let series: Vec<Series> = lists
        .iter()
        .map(|l| Series::new("".into(), l.as_slice()))
        .collect();
    if series.is_empty() {
        return Column::new_empty(name.into(), &DataType::List(Box::new(DataType::UInt32)));
    }
    Column::new(name.into(), series)
}

fn read_lists(column: &Column) -> Result<Vec<Vec<u32>>> {
    if column.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(column.len());
    for s in column.list()?.amortized_iter() {
        let s = s.ok_or_else(|| Error::NullList {
            column: column.name().to_string(),
        })?;
        out.push(s.as_ref().u32()?.into_no_null_iter().collect());
    }
    Ok(out)
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(io("create", path))?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|source| Error::Parquet {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(io("open", path))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|source| Error::Parquet {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dataset {
        let items = vec![
            ItemRecord {
                asin: "A1".into(),
                title: Some("Lipstick &amp; Gloss".into()),
                brand: None,
                categories: Some(vec![vec!["Beauty".into(), "Makeup".into()]]),
                description: None,
                price: Some(9.5),
            },
            ItemRecord {
                asin: "A2".into(),
                ..Default::default()
            },
            ItemRecord {
                asin: "A3".into(),
                title: Some("x".into()),
                ..Default::default()
            },
        ];
        Dataset {
            interactions: Interactions {
                items,
                users: vec!["U1".into(), "U2".into()],
                sequences: vec![vec![0, 1, 2], vec![2, 1, 0, 1]],
            },
            split: Split {
                train: vec![vec![0], vec![2, 1]],
                valid: vec![
                    HeldOut {
                        user: 0,
                        history: vec![0],
                        target: 1,
                    },
                    HeldOut {
                        user: 1,
                        history: vec![2, 1],
                        target: 0,
                    },
                ],
                test: vec![
                    HeldOut {
                        user: 0,
                        history: vec![0, 1],
                        target: 2,
                    },
                    HeldOut {
                        user: 1,
                        history: vec![2, 1, 0],
                        target: 1,
                    },
                ],
            },
        }
    }

    #[test]
    fn parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = sample();
        d.write(dir.path()).unwrap();
        assert_eq!(Dataset::read(dir.path()).unwrap(), d);
    }

    #[test]
    fn validate_rejects_out_of_range_items() {
        let mut d = sample();
        d.interactions.sequences[1].push(7);
        let err = d.interactions.validate().unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnknownItem {
                    user: 2,
                    item: 7,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("user 2") && msg.contains('7'), "{msg}");
    }
}
