//! The P5 folder layout (`sequential_data.txt`, `items.jsonl.gz`, optional `datamaps.json.gz`), as
//! shipped by P5, TIGER and GRID: already 5-core, users and items numbered from 1 in P5's order.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use artifacts::dataset::{Interactions, ItemRecord};
use serde::Deserialize;

use crate::error::{Error, Result, read_line};
use crate::open_maybe_gz;

/// Name of the interactions file of a P5 folder.
pub const SEQUENTIAL: &str = "sequential_data.txt";
/// Name of the item metadata file of a P5 folder.
pub const ITEMS: &str = "items.jsonl.gz";
/// Name of P5's id maps.
pub const DATAMAPS: &str = "datamaps.json.gz";

/// The files a P5 folder is read from (the datamaps file only when present).
pub fn p5_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join(SEQUENTIAL), dir.join(ITEMS)];
    if dir.join(DATAMAPS).exists() {
        files.push(dir.join(DATAMAPS));
    }
    files
}

/// Loads a P5 folder. User ids must be 1..N (each once) and item ids 1..M, every item id having a
/// row in `items.jsonl.gz`; 0-based ids are P5 ids − 1.
pub fn load_p5(dir: &Path) -> Result<Interactions> {
    let sequences = read_sequences(&dir.join(SEQUENTIAL))?;
    let max_item = sequences.iter().flatten().copied().max().unwrap_or(0);
    let items = read_items(&dir.join(ITEMS), max_item)?;
    let reviewers = read_user_map(&dir.join(DATAMAPS))?;
    let users = (1..=sequences.len())
        .map(|id| {
            reviewers
                .get(&id.to_string())
                .cloned()
                .unwrap_or_else(|| format!("user_{id}"))
        })
        .collect();
    let sequences = sequences
        .into_iter()
        .map(|s| s.into_iter().map(|i| i - 1).collect())
        .collect();
    Ok(Interactions {
        items,
        users,
        sequences,
    })
}

/// Reads `sequential_data.txt`: `user_id item_id item_id …` per line, ids ≥ 1, users 1..N each
/// exactly once. Returns the item ids (1-based) indexed by user id − 1.
pub fn read_sequences(path: &Path) -> Result<Vec<Vec<u32>>> {
    let reader = open_maybe_gz(path)?;
    let mut by_user: HashMap<u32, (usize, Vec<u32>)> = HashMap::new();
    for (n, line) in reader.lines().enumerate() {
        let n = n + 1;
        let line = line.map_err(read_line(path, n))?;
        let malformed = |line: usize, problem: String| Error::MalformedLine {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let mut fields = line.split_ascii_whitespace();
        let Some(user) = fields.next() else {
            return Err(malformed(
                n,
                "empty line; expected `user_id item_id item_id …`".to_string(),
            ));
        };
        let parse = |tok: &str, what: &str| -> Result<u32> {
            match tok.parse::<u32>() {
                Ok(v) if v >= 1 => Ok(v),
                _ => Err(malformed(
                    n,
                    format!(
                        "`{tok}` is not a valid {what} (expected a positive integer id in \
                         `user_id item_id item_id …`)"
                    ),
                )),
            }
        };
        let user = parse(user, "user id")?;
        let items = fields
            .map(|t| parse(t, "item id"))
            .collect::<Result<Vec<_>>>()?;
        if items.is_empty() {
            return Err(malformed(
                n,
                format!("user {user} has no items; expected `user_id item_id item_id …`"),
            ));
        }
        if let Some((first, _)) = by_user.get(&user) {
            return Err(malformed(
                n,
                format!("user {user} is listed twice (first on line {first})"),
            ));
        }
        by_user.insert(user, (n, items));
    }
    if by_user.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            problem: "the file has no users",
        });
    }
    let n_users = by_user.len() as u32;
    let mut out = vec![Vec::new(); by_user.len()];
    for (user, (line, items)) in by_user {
        if user > n_users {
            return Err(Error::MalformedLine {
                path: path.to_path_buf(),
                line,
                problem: format!(
                    "user id {user} is out of range: the file has {n_users} users, so ids \
                     must be 1..={n_users}"
                ),
            });
        }
        out[(user - 1) as usize] = items;
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ItemLine {
    item_id: u32,
    asin: String,
    title: Option<String>,
    brand: Option<String>,
    categories: Option<Vec<Vec<String>>>,
    description: Option<String>,
    price: Option<f64>,
}

/// Reads `items.jsonl.gz`: one JSON object per item; every id 1..=`max_item` must be present.
pub fn read_items(path: &Path, max_item: u32) -> Result<Vec<ItemRecord>> {
    let reader = open_maybe_gz(path)?;
    let mut items: Vec<Option<ItemRecord>> = vec![None; max_item as usize];
    for (n, line) in reader.lines().enumerate() {
        let n = n + 1;
        let line = line.map_err(read_line(path, n))?;
        if line.trim().is_empty() {
            continue;
        }
        let it: ItemLine = serde_json::from_str(&line).map_err(|source| Error::BadJson {
            path: path.to_path_buf(),
            line: Some(n),
            expected: "a JSON object with item_id, asin, title, brand, categories, description, \
                       price",
            source,
        })?;
        if it.item_id == 0 {
            return Err(Error::MalformedLine {
                path: path.to_path_buf(),
                line: n,
                problem: "item_id 0; P5 item ids start at 1".to_string(),
            });
        }
        if it.item_id > max_item {
            // An item that no user interacted with: not part of the dataset.
            continue;
        }
        let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        items[(it.item_id - 1) as usize] = Some(ItemRecord {
            asin: it.asin,
            title: clean(it.title),
            brand: clean(it.brand),
            categories: it.categories,
            description: clean(it.description),
            price: it.price,
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| Error::UnknownItem {
                path: path.to_path_buf(),
                item: i as u32 + 1,
                sequences: SEQUENTIAL,
            })
        })
        .collect()
}

/// Reads `id2user` from `datamaps.json.gz`; an absent file gives an empty map.
fn read_user_map(path: &Path) -> Result<HashMap<String, String>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    #[derive(Deserialize)]
    struct Maps {
        #[serde(default)]
        id2user: HashMap<String, String>,
    }
    let reader = open_maybe_gz(path)?;
    let maps: Maps = serde_json::from_reader(reader).map_err(|source| Error::BadJson {
        path: path.to_path_buf(),
        line: None,
        expected: "a JSON object with `id2user`",
        source,
    })?;
    Ok(maps.id2user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The error's message; every one of these is a malformed line or an empty file.
    fn err_of(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), SEQUENTIAL, text);
        let err = read_sequences(&p).unwrap_err();
        assert!(
            matches!(&err, Error::MalformedLine { path, .. } if *path == p),
            "{err:?}"
        );
        err.to_string()
    }

    #[test]
    fn reads_sequences_by_user_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), SEQUENTIAL, "2 3 1\n1 1 2 3\n");
        assert_eq!(read_sequences(&p).unwrap(), vec![vec![1, 2, 3], vec![3, 1]]);
    }

    #[test]
    fn bad_lines_name_file_line_and_expectation() {
        let m = err_of("1 1 2\n2 x 3\n");
        assert!(
            m.contains("sequential_data.txt:2")
                && m.contains("`x`")
                && m.contains("positive integer"),
            "{m}"
        );
        let m = err_of("1 1 2\n\n2 1 2\n");
        assert!(m.contains(":2: empty line"), "{m}");
        let m = err_of("1 1 2\n2 1\n1 3 4\n");
        assert!(
            m.contains(":3: user 1 is listed twice (first on line 1)"),
            "{m}"
        );
        let m = err_of("1 1 2\n3 1\n");
        assert!(m.contains("out of range"), "{m}");
        let m = err_of("1\n");
        assert!(m.contains("has no items"), "{m}");
        let m = err_of("1 0 2\n");
        assert!(m.contains("`0`"), "{m}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = read_sequences(Path::new("/no/such/sequential_data.txt")).unwrap_err();
        assert!(matches!(&err, Error::Io { .. }), "{err:?}");
        let m = err.to_string();
        assert!(m.contains("/no/such/sequential_data.txt"), "{m}");
    }

    #[test]
    fn items_need_a_row_per_used_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "items.jsonl",
            "{\"item_id\": 1, \"asin\": \"A\", \"title\": \"T\", \"brand\": null, \"categories\": [[\"C\"]], \"description\": null, \"price\": null}\n",
        );
        assert_eq!(read_items(&p, 1).unwrap()[0].title.as_deref(), Some("T"));
        let err = read_items(&p, 2).unwrap_err();
        assert!(matches!(err, Error::UnknownItem { item: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("item 2 is used"), "{err}");
        let bad = write(dir.path(), "bad.jsonl", "{\"item_id\": 1}\n");
        let err = read_items(&bad, 1).unwrap_err();
        assert!(
            matches!(err, Error::BadJson { line: Some(1), .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("bad.jsonl:1"), "{err}");
    }
}
