//! The synthetic `demo` dataset: a small, deterministic catalogue of beauty-like products whose
//! users follow learnable patterns, so the whole pipeline can run anywhere in minutes.
//!
//! Items belong to one of 18 sub-categories (6 categories × 3). Inside a sub-category the items
//! form a ring, and each item's successor on the ring is the item most users buy next
//! (`follow_prob`); otherwise a user picks from their favourite category, or anything. Titles,
//! brands, categories, descriptions and prices are consistent with the sub-category, so text
//! embeddings carry the same structure as the sequences. The generated reviews go through the
//! same k-core filter and numbering as the raw Amazon files.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// `ensure!` for [`Error::InvalidConfig`].
macro_rules! check {
    ($cond:expr, $key:literal, $($fmt:tt)+) => {
        if !$cond {
            return Err(Error::InvalidConfig {
                key: $key,
                message: format!($($fmt)+),
            });
        }
    };
}
use artifacts::config::SyntheticConfig;
use artifacts::dataset::{Interactions, ItemRecord};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raw::{AssembleReport, Review, assemble};

const CATEGORIES: [(&str, [&str; 3], [&str; 4]); 6] = [
    (
        "Skin Care",
        ["Face", "Body", "Sun"],
        ["Lumina", "DermaPure", "Velvet Leaf", "Aqualis"],
    ),
    (
        "Makeup",
        ["Eyes", "Lips", "Nails"],
        ["Chroma", "Belle Rouge", "Inkwell", "Glossier Lane"],
    ),
    (
        "Hair Care",
        ["Shampoo", "Styling", "Color"],
        ["Mane Street", "Silkroot", "Curl Theory", "Tressa"],
    ),
    (
        "Fragrance",
        ["Women", "Men", "Unisex"],
        ["Maison Ore", "Cedar & Smoke", "Petalune", "Noir Nine"],
    ),
    (
        "Bath",
        ["Soap", "Bubble Bath", "Scrubs"],
        ["Tidewater", "Oat & Honey", "Salt House", "Bubbly Co"],
    ),
    (
        "Tools",
        ["Brushes", "Mirrors", "Tweezers"],
        ["Precisia", "Arcline", "Handcraft", "Vanity Pro"],
    ),
];

const NOUNS: [[&str; 3]; 18] = [
    ["Cleanser", "Serum", "Night Cream"],
    ["Body Lotion", "Body Oil", "Hand Cream"],
    ["Sunscreen SPF 50", "After-Sun Gel", "Tinted SPF Balm"],
    ["Mascara", "Eyeliner", "Eyeshadow Palette"],
    ["Lipstick", "Lip Gloss", "Lip Liner"],
    ["Nail Polish", "Top Coat", "Cuticle Oil"],
    ["Shampoo", "Dry Shampoo", "Clarifying Wash"],
    ["Hair Spray", "Styling Gel", "Curl Cream"],
    ["Hair Dye", "Color Gloss", "Root Touch-Up"],
    ["Eau de Parfum", "Body Mist", "Solid Perfume"],
    ["Eau de Toilette", "Aftershave", "Cologne"],
    ["Fragrance Oil", "Room Spray", "Scented Candle"],
    ["Bar Soap", "Liquid Soap", "Soap Set"],
    ["Bubble Bath", "Bath Bomb", "Bath Milk"],
    ["Sugar Scrub", "Salt Scrub", "Exfoliating Mitt"],
    ["Foundation Brush", "Brush Set", "Blending Sponge"],
    ["Compact Mirror", "Lighted Mirror", "Travel Mirror"],
    ["Slant Tweezers", "Point Tweezers", "Brow Kit"],
];

const ADJECTIVES: [&str; 12] = [
    "Hydrating",
    "Gentle",
    "Radiant",
    "Matte",
    "Nourishing",
    "Classic",
    "Intense",
    "Fresh",
    "Velvet",
    "Daily",
    "Professional",
    "Travel-Size",
];

/// Generates the demo catalogue and interactions, then applies the k-core filter.
pub fn generate(cfg: &SyntheticConfig, k_core: usize) -> Result<(Interactions, AssembleReport)> {
    check!(
        cfg.items >= 18,
        "data.synthetic.items",
        "data.synthetic.items must be at least 18 (one per sub-category)"
    );
    check!(
        cfg.users >= 1,
        "data.synthetic.users",
        "data.synthetic.users must be at least 1"
    );
    check!(
        cfg.min_len >= 3 && cfg.min_len <= cfg.max_len,
        "data.synthetic.min_len",
        "data.synthetic needs 3 <= min_len <= max_len (got {}..{})",
        cfg.min_len,
        cfg.max_len
    );
    check!(
        cfg.max_len < cfg.items,
        "data.synthetic.max_len",
        "data.synthetic.max_len must be below data.synthetic.items"
    );
    check!(
        (0.0..=1.0).contains(&cfg.follow_prob),
        "data.synthetic.follow_prob",
        "data.synthetic.follow_prob must be in [0, 1]"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);

    // Catalogue: item i is in sub-category i % 18; rings follow item order within a sub-category.
    let n_sub = NOUNS.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_sub];
    let mut meta = HashMap::new();
    let mut asins = Vec::with_capacity(cfg.items);
    for i in 0..cfg.items {
        let sub = i % n_sub;
        let (cat, subs, brands) = CATEGORIES[sub / 3];
        let brand = brands[rng.random_range(0..brands.len())];
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let noun = NOUNS[sub][rng.random_range(0..3)];
        let asin = format!("DEMO{:05}", i + 1);
        let record = ItemRecord {
            asin: asin.clone(),
            title: Some(format!(
                "{brand} {adjective} {noun}, No. {}",
                members[sub].len() + 1
            )),
            brand: Some(brand.to_string()),
            categories: Some(vec![vec![
                "Beauty".to_string(),
                cat.to_string(),
                subs[sub % 3].to_string(),
            ]]),
            description: Some(format!(
                "A {} {} from {brand} for the {} routine.",
                adjective.to_lowercase(),
                noun.to_lowercase(),
                subs[sub % 3].to_lowercase()
            )),
            price: Some(f64::from(rng.random_range(300..6000u32)) / 100.0),
        };
        meta.insert(asin.clone(), record);
        asins.push(asin);
        members[sub].push(i);
    }
    let successor = |i: usize| {
        let ring = &members[i % n_sub];
        let pos = ring.iter().position(|&x| x == i).expect("member");
        ring[(pos + 1) % ring.len()]
    };

    let mut reviews = Vec::new();
    let mut time = 0i64;
    for u in 0..cfg.users {
        let favourite_cat = rng.random_range(0..CATEGORIES.len());
        let len = rng.random_range(cfg.min_len..=cfg.max_len);
        let start_sub = favourite_cat * 3 + rng.random_range(0..3);
        let mut current = members[start_sub][rng.random_range(0..members[start_sub].len())];
        let mut seq = vec![current];
        while seq.len() < len {
            let r: f64 = rng.random();
            let mut next = if r < cfg.follow_prob {
                successor(current)
            } else if r < cfg.follow_prob + (1.0 - cfg.follow_prob) / 2.0 {
                let sub = favourite_cat * 3 + rng.random_range(0..3);
                members[sub][rng.random_range(0..members[sub].len())]
            } else {
                rng.random_range(0..cfg.items)
            };
            // No repeats: walk the ring, then fall back to any unused item.
            let mut tries = 0;
            while seq.contains(&next) && tries < members[next % n_sub].len() {
                next = successor(next);
                tries += 1;
            }
            while seq.contains(&next) {
                next = rng.random_range(0..cfg.items);
            }
            seq.push(next);
            current = next;
        }
        for item in seq {
            time += 1;
            reviews.push(Review {
                user: format!("DEMOUSER{:05}", u + 1),
                asin: asins[item].clone(),
                time,
            });
        }
    }
    assemble(reviews, meta, k_core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_k_core() {
        let cfg = SyntheticConfig::default();
        let (a, _) = generate(&cfg, 5).unwrap();
        let (b, _) = generate(&cfg, 5).unwrap();
        assert_eq!(a, b);
        assert!(
            a.users.len() > 400 && a.items.len() > 200,
            "{} users {} items",
            a.users.len(),
            a.items.len()
        );
        let mut counts = vec![0; a.items.len()];
        for s in &a.sequences {
            assert!(s.len() >= 5);
            for &i in s {
                counts[i as usize] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c >= 5));
        let other = generate(&SyntheticConfig { seed: 8, ..cfg }, 5).unwrap().0;
        assert_ne!(a.sequences, other.sequences);
    }

    #[test]
    fn successor_signal_is_learnable() {
        // With follow_prob 0.6, a "next = most frequent successor" rule must beat chance by far.
        let (inter, _) = generate(&SyntheticConfig::default(), 5).unwrap();
        let mut next: HashMap<(u32, u32), usize> = HashMap::new();
        for s in &inter.sequences {
            for w in s.windows(2) {
                *next.entry((w[0], w[1])).or_default() += 1;
            }
        }
        let mut best: HashMap<u32, (u32, usize)> = HashMap::new();
        for (&(a, b), &c) in &next {
            let e = best.entry(a).or_insert((b, 0));
            if c > e.1 {
                *e = (b, c);
            }
        }
        let (mut hit, mut total) = (0, 0);
        for s in &inter.sequences {
            for w in s.windows(2) {
                total += 1;
                hit += usize::from(best.get(&w[0]).is_some_and(|&(b, _)| b == w[1]));
            }
        }
        let rate = hit as f64 / total as f64;
        assert!(rate > 0.4, "top-successor accuracy {rate}");
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let bad = SyntheticConfig {
            min_len: 2,
            ..Default::default()
        };
        assert!(matches!(
            generate(&bad, 5),
            Err(Error::InvalidConfig {
                key: "data.synthetic.min_len",
                ..
            })
        ));
        let bad = SyntheticConfig {
            items: 5,
            ..Default::default()
        };
        assert!(matches!(
            generate(&bad, 5),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
