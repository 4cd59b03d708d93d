//! Item text: labelled segments over the fields an item has.
//!
//! The default follows what is reported for the reference (Title, Brand, Categories, Price;
//! docs/reference.md §2): `Title: …; Brand: …; Categories: …; Price: …`. A segment whose fields are all
//! absent is left out (never printed as "None"); categories are all paths flattened in order and
//! joined with ", "; HTML entities are decoded unless `decode_html = false`.

use crate::error::{Error, Result};
use artifacts::config::TemplateConfig;
use artifacts::dataset::ItemRecord;

/// The fields a template may name.
pub const FIELDS: [&str; 5] = ["title", "brand", "categories", "description", "price"];

/// A checked template.
#[derive(Debug, Clone)]
pub struct ItemTextTemplate {
    segments: Vec<Vec<Piece>>,
    separator: String,
    decode_html: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field(usize),
}

impl ItemTextTemplate {
    /// Parses and checks the configured segments (unknown placeholders are an error).
    pub fn new(cfg: &TemplateConfig) -> Result<ItemTextTemplate> {
        if cfg.segments.is_empty() {
            return Err(Error::InvalidConfig {
                key: "embedding.template.segments",
                message: "embedding.template.segments is empty: the item text would always be \
                          empty"
                    .to_string(),
            });
        }
        let segments = cfg
            .segments
            .iter()
            .map(|s| parse_segment(s))
            .collect::<Result<_>>()?;
        Ok(ItemTextTemplate {
            segments,
            separator: cfg.separator.clone(),
            decode_html: cfg.decode_html,
        })
    }

    /// The text of one item ("" when it has none of the fields).
    pub fn render(&self, item: &ItemRecord) -> String {
        let values: Vec<Option<String>> = FIELDS.iter().map(|f| self.field(item, f)).collect();
        let mut parts = Vec::new();
        for seg in &self.segments {
            let fields: Vec<usize> = seg
                .iter()
                .filter_map(|p| match p {
                    Piece::Field(i) => Some(*i),
                    Piece::Text(_) => None,
                })
                .collect();
            if !fields.is_empty() && fields.iter().all(|&i| values[i].is_none()) {
                continue;
            }
            let text: String = seg
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    Piece::Field(i) => values[*i].as_deref().unwrap_or(""),
                })
                .collect();
            parts.push(text);
        }
        parts.join(&self.separator)
    }

    fn field(&self, item: &ItemRecord, name: &str) -> Option<String> {
        let raw = match name {
            "title" => item.title.clone(),
            "brand" => item.brand.clone(),
            "description" => item.description.clone(),
            "categories" => item.categories.as_ref().map(|paths| {
                paths
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            "price" => item.price.map(|p| format!("${p:.2}")),
            _ => unreachable!("checked when parsed"),
        }?;
        let value = if self.decode_html {
            html_escape::decode_html_entities(&raw).into_owned()
        } else {
            raw
        };
        let value = value.trim().to_string();
        (!value.is_empty()).then_some(value)
    }
}

fn parse_segment(s: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(Error::Template {
                segment: s.to_string(),
                problem: "`{` without `}`".to_string(),
            });
        };
        let name = &rest[open + 1..open + close];
        let Some(i) = FIELDS.iter().position(|f| *f == name) else {
            return Err(Error::Template {
                segment: s.to_string(),
                problem: format!("unknown field `{{{name}}}`; fields: {}", FIELDS.join(", ")),
            });
        };
        out.push(Piece::Field(i));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> ItemRecord {
        ItemRecord {
            asin: "A".into(),
            title: Some("Rose &amp; Oud".into()),
            brand: None,
            categories: Some(vec![
                vec!["Beauty".into(), "Fragrance".into()],
                vec!["Gifts".into()],
            ]),
            description: None,
            price: Some(12.5),
        }
    }

    #[test]
    fn default_template_leaves_absent_fields_out_and_decodes_html() {
        let t = ItemTextTemplate::new(&TemplateConfig::default()).unwrap();
        assert_eq!(
            t.render(&item()),
            "Title: Rose & Oud; Categories: Beauty, Fragrance, Gifts; Price: $12.50"
        );
        let raw = ItemTextTemplate::new(&TemplateConfig {
            decode_html: false,
            ..Default::default()
        })
        .unwrap();
        assert!(raw.render(&item()).starts_with("Title: Rose &amp; Oud"));
        assert_eq!(
            t.render(&ItemRecord {
                asin: "B".into(),
                ..Default::default()
            }),
            ""
        );
    }

    #[test]
    fn matches_the_fixture_template() {
        // The MiniLM fixture's text for Beauty item 1 (see tests/data/minilm/meta.json).
        let cfg = TemplateConfig {
            decode_html: false,
            ..Default::default()
        };
        let t = ItemTextTemplate::new(&cfg).unwrap();
        let it = ItemRecord {
            asin: "B004756YJA".into(),
            title: Some("OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce".into()),
            brand: Some("OPI".into()),
            categories: Some(vec![vec![
                "Beauty".into(),
                "Makeup".into(),
                "Nails".into(),
                "Nail Polish".into(),
            ]]),
            description: None,
            price: None,
        };
        assert_eq!(
            t.render(&it),
            "Title: OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce; Brand: OPI; Categories: Beauty, Makeup, Nails, Nail Polish"
        );
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let cfg = TemplateConfig {
            segments: vec!["Colour: {colour}".into()],
            ..Default::default()
        };
        let err = ItemTextTemplate::new(&cfg).unwrap_err();
        assert!(matches!(&err, Error::Template { .. }), "{err:?}");
        let m = err.to_string();
        assert!(m.contains("{colour}") && m.contains("title"), "{m}");
    }
}
