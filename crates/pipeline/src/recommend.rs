//! Recommendations from a trained run: the top-K items for a user of the dataset or an ad-hoc
//! history of ASINs, with titles, SIDs and beam probabilities; items already in the history are
//! marked. Load the run once ([`TrainedRun::load`]) and ask as often as needed.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use evaluator::EvalSettings;

use crate::error::{Error, Result};
use crate::inputs::TrainedRun;

/// Whose history.
#[derive(Debug, Clone)]
pub enum Who {
    /// A user of the dataset, by id as in the data files (P5: 1-based numbers), else by 1-based
    /// position.
    User(String),
    /// Items by ASIN, oldest first.
    History(Vec<String>),
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// 1-based rank.
    pub rank: usize,
    /// The item's 1-based id, or `None` for a generated SID that is no item.
    pub item: Option<u32>,
    /// ASIN.
    pub asin: String,
    /// Title (or `-`).
    pub title: String,
    /// SID digits.
    pub sid: Vec<u32>,
    /// Beam probability.
    pub score: f32,
    /// Already in the history.
    pub seen: bool,
}

/// The recommendations for one history.
#[derive(Debug, Clone)]
pub struct Recommendations {
    /// The history as 0-based item indices, oldest first (all of it, before truncation).
    pub history: Vec<u32>,
    /// How many of the oldest items were left out because the model reads at most
    /// `data.max_history` items.
    pub truncated: usize,
    /// The items, best first.
    pub items: Vec<Recommendation>,
}

impl<B: Backend> TrainedRun<B> {
    /// The history of `who` as 0-based item indices, oldest first.
    pub fn history_of(&self, who: &Who) -> Result<Vec<u32>> {
        let inter = &self.inputs.data.interactions;
        let dataset = || self.dataset.clone();
        let history: Vec<u32> = match who {
            Who::User(id) => {
                let by_position = id
                    .parse::<usize>()
                    .ok()
                    .filter(|&p| (1..=inter.users.len()).contains(&p))
                    .map(|p| p - 1);
                let u = inter
                    .users
                    .iter()
                    .position(|x| x == id)
                    .or(by_position)
                    .ok_or_else(|| Error::UnknownUser {
                        id: id.clone(),
                        dataset: dataset(),
                        first: inter.users.first().cloned().unwrap_or_default(),
                        last: inter.users.last().cloned().unwrap_or_default(),
                        count: inter.users.len(),
                    })?;
                inter.sequences[u].clone()
            }
            Who::History(asins) => {
                let by_asin: HashMap<&str, u32> = inter
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (it.asin.as_str(), i as u32))
                    .collect();
                asins
                    .iter()
                    .map(|a| {
                        by_asin
                            .get(a.as_str())
                            .copied()
                            .ok_or_else(|| Error::UnknownItem {
                                id: a.clone(),
                                dataset: dataset(),
                                hint: String::new(),
                            })
                    })
                    .collect::<Result<_>>()?
            }
        };
        if history.is_empty() {
            return Err(Error::EmptyHistory);
        }
        Ok(history)
    }

    /// The `top` best items for each history (0-based item indices, oldest first), in one beam
    /// search batch; the beam widens to `top` when the configured one is narrower.
    pub fn recommend_histories(
        &self,
        histories: &[Vec<u32>],
        top: usize,
        device: &B::Device,
    ) -> Result<Vec<Recommendations>> {
        let catalogue = &self.inputs.catalogue;
        if top == 0 || top > catalogue.table.len() {
            return Err(Error::TopOutOfRange {
                top,
                max: catalogue.table.len(),
                dataset: self.dataset.clone(),
            });
        }
        if histories.iter().any(Vec::is_empty) {
            return Err(Error::EmptyHistory);
        }
        let max_history = self.config.data.max_history;
        let recent: Vec<&[u32]> = histories
            .iter()
            .map(|h| &h[h.len().saturating_sub(max_history)..])
            .collect();
        let settings = EvalSettings {
            beam_width: top.max(self.config.eval.beam_width),
            ..EvalSettings::new(&self.config, false)
        };
        let ranked = evaluator::recommend(&self.model, &recent, catalogue, &settings, device);
        let items = &self.inputs.data.interactions.items;
        Ok(histories
            .iter()
            .zip(ranked)
            .map(|(history, r)| Recommendations {
                history: history.clone(),
                truncated: history.len().saturating_sub(max_history),
                items: r
                    .items
                    .iter()
                    .zip(&r.scores)
                    // A beam with probability 0 is no generation (constrained decoding ran out
                    // of prefixes).
                    .filter(|(_, score)| **score > 0.0)
                    .take(top)
                    .enumerate()
                    .map(|(i, (item, &score))| {
                        let record = item.map(|it| &items[it as usize]);
                        Recommendation {
                            rank: i + 1,
                            item: item.map(|it| it + 1),
                            asin: record.map_or("-".into(), |r| r.asin.clone()),
                            title: record
                                .and_then(|r| r.title.as_deref())
                                .map(|t| html_escape::decode_html_entities(t).into_owned())
                                .unwrap_or_else(|| "-".into()),
                            sid: item.map_or(vec![], |it| catalogue.table.sid(it).to_vec()),
                            score,
                            seen: item.is_some_and(|it| history.contains(&it)),
                        }
                    })
                    .collect(),
            })
            .collect())
    }

    /// The `top` best items for `who`.
    pub fn recommend(&self, who: &Who, top: usize, device: &B::Device) -> Result<Recommendations> {
        let history = self.history_of(who)?;
        Ok(self.recommend_histories(&[history], top, device)?.remove(0))
    }
}
