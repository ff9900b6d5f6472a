//! The parameters and capabilities in their QMP forms: `query-migrate-parameters`,
//! `query-migrate-capabilities` and the `migrate-set-parameters` object, with QEMU's wording.
use super::{enum_index, unknown_parameter, validate, Capabilities, Capability, ParamKind, Parameter, Params};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// The parameters as `query-migrate-parameters` returns them: every member, fixed order.
pub fn params_to_json(params: &Params) -> String {
    let members: Map<String, Value> = Parameter::ALL
        .iter()
        .map(|p| {
            let v = p.get(params);
            let value = match p.kind() {
                ParamKind::Enum(names) => Value::from(names[v as usize]),
                ParamKind::Bool => Value::from(v != 0),
                ParamKind::Size | ParamKind::Integer => Value::from(v),
            };
            (p.name().to_owned(), value)
        })
        .collect();
    crate::report::qmp::to_string(&Value::Object(members))
}

/// The capabilities as `query-migrate-capabilities` returns them.
pub fn capabilities_to_json(caps: &Capabilities) -> String {
    let list: Vec<Value> = Capability::ALL
        .iter()
        .map(|c| {
            let mut entry = Map::new();
            entry.insert("capability".into(), Value::from(c.name()));
            entry.insert("state".into(), Value::from(c.get(caps)));
            Value::Object(entry)
        })
        .collect();
    crate::report::qmp::to_string(&Value::Array(list))
}

/// One QMP member's value as a `u64` (QAPI `uint64` / `size`), with QEMU's wording. `raw` is
/// the member's text: an integer literal that does not fit (negative, or beyond `uint64`,
/// which serde_json reads as a float) is `SWO_ERR_OUT_OF_RANGE`; anything that is not an
/// integer literal (`1.5`, `1e3`, a string) is the wrong type, `SWO_ERR_INVALID_ARG`.
fn qmp_u64(name: &str, value: &Value, raw: &str) -> Result<u64> {
    let message = || format!("Parameter '{name}' expects uint64");
    if let Some(v) = value.as_u64() {
        return Ok(v);
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let integer_literal = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match (value, integer_literal) {
        // "-0" (read as the float -0.0) is the integer 0, as QEMU's parser reads it.
        (Value::Number(_), true) if digits.bytes().all(|b| b == b'0') => Ok(0),
        // QEMU takes negative integers and wraps them; the library refuses them.
        (Value::Number(_), true) => Err(Error::out_of_range(message())),
        _ => Err(Error::invalid_arg(message())),
    }
}

/// The message of QEMU's QMP parser for a key that appears twice in one object: `parse_pair`
/// (qobject/json-parser.c) calls `parse_error(ctxt, token, "duplicate key")`, which words it
/// `JSON parse error, %s`.
const DUPLICATE_KEY: &str = "duplicate key";

/// Any JSON value, read only to refuse a key that appears twice in any of its objects (at
/// any depth, as QEMU's parser does); serde_json would keep the last one silently.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Merges a `migrate-set-parameters` object over `current`: members are read in schema
/// order (so a mistyped known member is reported before an unknown one, as QAPI does), then
/// the whole result is validated. A key that appears twice anywhere is refused before any of
/// that (`JSON parse error, duplicate key`, as QEMU's QMP parser refuses it).
pub fn merge_params_json(current: &Params, json: &str) -> Result<Params> {
    let parse_error = |e: serde_json::Error| {
        let text = e.to_string();
        if e.is_data() && text.starts_with(DUPLICATE_KEY) {
            Error::parse(format!("JSON parse error, {DUPLICATE_KEY}"))
        } else {
            Error::parse(format!("JSON parse error, {e}"))
        }
    };
    serde_json::from_str::<NoDuplicateKeys>(json).map_err(parse_error)?;
    let value: Value = serde_json::from_str(json).map_err(parse_error)?;
    let Value::Object(members) = value else {
        return Err(Error::parse("Invalid parameter type for 'parameters', expected: object"));
    };
    // The members' texts, to tell an integer too large for `u64` from a float.
    let raw: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(json).map_err(parse_error)?;
    let mut merged = current.clone();
    for p in Parameter::ALL {
        if let Some(v) = members.get(p.name()) {
            let value = match p.kind() {
                ParamKind::Enum(names) => match v {
                    Value::String(text) => enum_index(p.name(), names, text)?,
                    _ => return Err(Error::invalid_arg(format!("Invalid parameter type for '{}', expected: string", p.name()))),
                },
                ParamKind::Bool => match v {
                    Value::Bool(b) => *b as u64,
                    _ => return Err(Error::invalid_arg(format!("Invalid parameter type for '{}', expected: boolean", p.name()))),
                },
                ParamKind::Size | ParamKind::Integer => {
                    let text = raw.get(p.name()).map_or("", |r| r.get());
                    qmp_u64(p.name(), v, text)?
                }
            };
            p.set(&mut merged, value);
        }
    }
    if let Some(unknown) = members.keys().find(|k| Parameter::from_name(k).is_none()) {
        return Err(unknown_parameter(unknown));
    }
    validate(&merged)?;
    Ok(merged)
}

/// The (already parsed and valid) JSON object names `param`.
pub(crate) fn json_names(json: &str, param: Parameter) -> bool {
    serde_json::from_str::<Map<String, Value>>(json).is_ok_and(|m| m.contains_key(param.name()))
}
