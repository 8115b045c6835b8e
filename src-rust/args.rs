//! Every argument check of the core, in one place.
//!
//! Kernels receive their parameters as a [`Params`] map of loosely typed [`Value`]s (the
//! bindings convert Python objects without judging them) and read each one through a typed
//! accessor that refuses a bad value with [`CoreError::InvalidArgument`] naming the
//! argument. The NumPy backend's `crackle_runtime._args` mirrors these accessors message for
//! message, so both backends raise the same error for the same bad argument.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{CoreError, CoreResult};

/// A parameter value as the caller gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    /// An integer; `None` when it does not fit in an i128.
    Int(Option<i128>),
    Bool(bool),
    /// Anything else, by its type name (refused by every accessor).
    Other(String),
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(Some(value.into()))
    }
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Value::Int(Some(value.into()))
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(i128::try_from(value).ok())
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

/// A parameter's name and its default (the value used when the caller gives none).
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub default: DefaultValue,
}

/// A default value that can live in a `const`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Float(f64),
    Int(i64),
    Seed(u64),
    Bool(bool),
}

impl DefaultValue {
    fn value(self) -> Value {
        match self {
            DefaultValue::Float(value) => Value::Float(value),
            DefaultValue::Int(value) => value.into(),
            DefaultValue::Seed(value) => value.into(),
            DefaultValue::Bool(value) => Value::Bool(value),
        }
    }
}

/// The parameters of one kernel call: the caller's values over the kernel's defaults.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, Value>,
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// Set `name` (builder style, for Rust callers and tests).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    pub fn insert(&mut self, name: String, value: Value) {
        self.values.insert(name, value);
    }

    /// The caller's values over `specs`' defaults; an unknown name is an error naming it
    /// (a misspelt parameter never passes silently).
    pub fn resolve(&self, kernel: &str, specs: &[ParamSpec]) -> CoreResult<Params> {
        if let Some(unknown) = self
            .values
            .keys()
            .find(|name| !specs.iter().any(|spec| spec.name == name.as_str()))
        {
            let known: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
            return Err(CoreError::invalid(
                "params",
                format!(
                    "params: {kernel} has no parameter {unknown:?} (known: {})",
                    known.join(", ")
                ),
            ));
        }
        let mut resolved = Params::new();
        for spec in specs {
            let value = self
                .values
                .get(spec.name)
                .cloned()
                .unwrap_or_else(|| spec.default.value());
            resolved.values.insert(spec.name.to_owned(), value);
        }
        Ok(resolved)
    }

    fn get(&self, name: &'static str) -> CoreResult<&Value> {
        self.values
            .get(name)
            .ok_or_else(|| CoreError::invalid(name, format!("{name} is required")))
    }

    /// A number (an int is read as its float value).
    pub fn number(&self, name: &'static str) -> CoreResult<f64> {
        match self.get(name)? {
            Value::Float(value) => Ok(*value),
            Value::Int(Some(value)) => Ok(*value as f64),
            Value::Int(None) => Err(out_of_range(name, "a number")),
            other => Err(wrong_type(name, "a number", other)),
        }
    }

    /// A finite number >= `low` (or > `low` when not `inclusive`).
    pub fn finite(&self, name: &'static str, low: f64, inclusive: bool) -> CoreResult<f64> {
        let value = self.number(name)?;
        let ok = value.is_finite() && if inclusive { value >= low } else { value > low };
        if ok {
            Ok(value)
        } else {
            let bound = if inclusive { ">=" } else { ">" };
            Err(CoreError::invalid(
                name,
                format!("{name} must be finite and {bound} {low}, got {value}"),
            ))
        }
    }

    /// A number in (0, 1].
    pub fn unit_interval(&self, name: &'static str) -> CoreResult<f64> {
        let value = self.number(name)?;
        if value > 0.0 && value <= 1.0 {
            Ok(value)
        } else {
            Err(CoreError::invalid(
                name,
                format!("{name} must be in (0, 1], got {value}"),
            ))
        }
    }

    /// An integer in `low..=high`.
    pub fn integer(&self, name: &'static str, low: i128, high: i128) -> CoreResult<i128> {
        let value = match self.get(name)? {
            Value::Int(Some(value)) => *value,
            Value::Int(None) => return Err(out_of_range(name, "an integer")),
            other => return Err(wrong_type(name, "an integer", other)),
        };
        if value < low {
            return Err(CoreError::invalid(
                name,
                format!("{name} must be >= {low}, got {value}"),
            ));
        }
        if value > high {
            return Err(CoreError::invalid(
                name,
                format!("{name} must be <= {high}, got {value}"),
            ));
        }
        Ok(value)
    }

    /// A count >= `low` (at most 2**63 - 1).
    pub fn count(&self, name: &'static str, low: usize) -> CoreResult<usize> {
        let value = self.integer(name, low as i128, i64::MAX as i128)?;
        usize::try_from(value).map_err(|_| out_of_range(name, "a count"))
    }

    /// A seed in [0, 2**64).
    pub fn seed(&self, name: &'static str) -> CoreResult<u64> {
        match self.get(name)? {
            Value::Int(Some(value)) if (0..=u64::MAX as i128).contains(value) => Ok(*value as u64),
            Value::Int(_) => Err(CoreError::invalid(
                name,
                format!("{name} must be in [0, 2**64)"),
            )),
            other => Err(wrong_type(name, "an integer", other)),
        }
    }

    /// The time budget: `seconds` from now (NaN refused; inf or > 1e9 s: no deadline).
    pub fn deadline(&self, name: &'static str) -> CoreResult<Budget> {
        let seconds = self.number(name)?;
        if seconds.is_nan() {
            return Err(CoreError::invalid(
                name,
                format!("{name} must be a number of seconds (inf for no limit), got NaN"),
            ));
        }
        if !seconds.is_finite() || seconds > 1e9 {
            return Ok(Budget::unlimited());
        }
        Ok(Budget::until(
            Instant::now() + Duration::from_secs_f64(seconds.max(0.0)),
        ))
    }
}

fn wrong_type(name: &'static str, expected: &str, got: &Value) -> CoreError {
    let got = match got {
        Value::Float(_) => "float".to_owned(),
        Value::Int(_) => "int".to_owned(),
        Value::Bool(_) => "bool".to_owned(),
        Value::Other(type_name) => type_name.clone(),
    };
    CoreError::invalid(name, format!("{name} must be {expected}, got {got}"))
}

fn out_of_range(name: &'static str, what: &str) -> CoreError {
    CoreError::invalid(
        name,
        format!("{name} must be {what} that fits in 64 bits, got a larger integer"),
    )
}

/// A point in time past which long work stops with [`CoreError::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    pub fn unlimited() -> Self {
        Budget { deadline: None }
    }

    pub fn until(deadline: Instant) -> Self {
        Budget {
            deadline: Some(deadline),
        }
    }

    pub fn instant(&self) -> Option<Instant> {
        self.deadline
    }

    /// Err(Timeout) once the deadline has passed.
    #[inline]
    pub fn check(&self, stage: &'static str) -> CoreResult<()> {
        match self.deadline {
            Some(limit) if Instant::now() >= limit => Err(CoreError::Timeout { stage }),
            _ => Ok(()),
        }
    }

    pub fn expired(&self) -> bool {
        matches!(self.deadline, Some(limit) if Instant::now() >= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "threshold",
            default: DefaultValue::Float(2.5),
        },
        ParamSpec {
            name: "permutations",
            default: DefaultValue::Int(199),
        },
        ParamSpec {
            name: "seed",
            default: DefaultValue::Seed(7),
        },
    ];

    fn message(error: CoreError) -> (String, &'static str) {
        match error {
            CoreError::InvalidArgument { argument, message } => (message, argument),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_what_the_caller_left_out() {
        let params = Params::new()
            .with("threshold", 1.5)
            .resolve("k", SPECS)
            .unwrap();
        assert_eq!(params.number("threshold").unwrap(), 1.5);
        assert_eq!(params.count("permutations", 1).unwrap(), 199);
        assert_eq!(params.seed("seed").unwrap(), 7);
    }

    #[test]
    fn unknown_names_are_refused() {
        let error = Params::new()
            .with("treshold", 1.5)
            .resolve("clustering", SPECS)
            .unwrap_err();
        let (text, argument) = message(error);
        assert_eq!(argument, "params");
        assert!(
            text.contains("clustering has no parameter \"treshold\""),
            "{text}"
        );
    }

    #[test]
    fn every_check_names_its_argument() {
        let params = Params::new()
            .with("a", -1.0)
            .with("b", Value::Int(None))
            .with("c", Value::Other("str".into()))
            .with("d", 0i64)
            .with("e", 2.0);
        let (text, argument) = message(params.finite("a", 0.0, true).unwrap_err());
        assert_eq!(
            (text.as_str(), argument),
            ("a must be finite and >= 0, got -1", "a")
        );
        let (text, _) = message(params.count("b", 1).unwrap_err());
        assert!(
            text.starts_with("b must be an integer that fits in 64 bits"),
            "{text}"
        );
        let (text, _) = message(params.number("c").unwrap_err());
        assert_eq!(text, "c must be a number, got str");
        let (text, _) = message(params.count("d", 1).unwrap_err());
        assert_eq!(text, "d must be >= 1, got 0");
        let (text, _) = message(params.unit_interval("e").unwrap_err());
        assert_eq!(text, "e must be in (0, 1], got 2");
        let (text, _) = message(params.seed("a").unwrap_err());
        assert_eq!(text, "a must be an integer, got float");
        let (text, _) = message(params.seed("b").unwrap_err());
        assert_eq!(text, "b must be in [0, 2**64)");
    }

    #[test]
    fn deadlines() {
        let params = Params::new()
            .with("none", f64::INFINITY)
            .with("spent", 0.0)
            .with("bad", f64::NAN);
        assert!(params.deadline("none").unwrap().check("x").is_ok());
        assert_eq!(
            params.deadline("spent").unwrap().check("x"),
            Err(CoreError::Timeout { stage: "x" })
        );
        assert!(params.deadline("bad").is_err());
    }
}
