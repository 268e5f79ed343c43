//! f64 fields of resume points, exactly through JSON: written as their shortest round-trip
//! decimal strings (`{:?}`) and read back with Rust's correctly rounded parser. serde_json's
//! own float parser (without its `float_roundtrip` feature, which would rebuild burn's whole
//! dependency tree) can land one ulp off for 17-digit values — a resumed run then rewrote
//! `metrics.csv` with `2.08289631207784` where the uninterrupted one had `2.0828963120778403`.
//! Numbers written by older versions are still read (as before).

use serde::{Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Text(String),
    Number(f64),
}

fn value<E: serde::de::Error>(n: Num) -> Result<f64, E> {
    match n {
        Num::Number(v) => Ok(v),
        Num::Text(s) => s
            .parse()
            .map_err(|_| E::custom(format!("'{s}' is not a number"))),
    }
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}"))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    value(Num::deserialize(d)?)
}

/// The same for `Vec<f64>`.
pub mod vec {
    use super::{Num, value};
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&format!("{x:?}"))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Num>::deserialize(d)?.into_iter().map(value).collect()
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super")]
        a: f64,
        #[serde(with = "super::vec")]
        b: Vec<f64>,
    }

    #[test]
    fn values_survive_json_bit_for_bit() {
        // 2.0828963120778403 is one that serde_json's default parser reads one ulp off.
        let t = T {
            a: 2.0828963120778403,
            b: vec![
                0.1 + 0.2,
                f64::MIN_POSITIVE,
                1e308,
                -0.0,
                f64::NAN,
                f64::INFINITY,
            ],
        };
        let back: T = serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
        assert_eq!(back.a.to_bits(), t.a.to_bits());
        for (x, y) in back.b.iter().zip(&t.b) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
        // Older resume points wrote numbers: still read.
        let old: T = serde_json::from_str(r#"{"a": 1.5, "b": [2.5]}"#).unwrap();
        assert_eq!((old.a, old.b), (1.5, vec![2.5]));
    }
}
