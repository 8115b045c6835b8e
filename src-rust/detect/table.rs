//! Named results: every detector kernel returns a [`Table`], a list of named columns.
//!
//! Columns of one table may have different lengths (per metric, per pair, per task, per
//! cluster...): each detector documents its fields and their lengths, and declares their
//! names in order as `FIELDS`. Python reads them by name, never by position.
//!
//! [`record!`](crate::record) declares a row struct whose field names are the table's field
//! names, so a kernel can compute rows and hand them over as one table.

/// One named column of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Float(values) => values.len(),
            Column::Int(values) => values.len(),
            Column::Bool(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_float(&self) -> Option<&[f64]> {
        match self {
            Column::Float(values) => Some(values),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<&[i64]> {
        match self {
            Column::Int(values) => Some(values),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<&[bool]> {
        match self {
            Column::Bool(values) => Some(values),
            _ => None,
        }
    }
}

impl From<Vec<f64>> for Column {
    fn from(values: Vec<f64>) -> Self {
        Column::Float(values)
    }
}

impl From<Vec<i64>> for Column {
    fn from(values: Vec<i64>) -> Self {
        Column::Int(values)
    }
}

impl From<Vec<bool>> for Column {
    fn from(values: Vec<bool>) -> Self {
        Column::Bool(values)
    }
}

/// A kernel's result: named columns in the order of the kernel's `FIELDS`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    columns: Vec<(&'static str, Column)>,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    /// Append a column (builder style).
    pub fn with(mut self, name: &'static str, column: impl Into<Column>) -> Self {
        self.push(name, column);
        self
    }

    pub fn push(&mut self, name: &'static str, column: impl Into<Column>) {
        debug_assert!(
            self.get(name).is_none(),
            "field {name} appears twice in one table"
        );
        self.columns.push((name, column.into()));
    }

    /// Append every column of `other`.
    pub fn extend(&mut self, other: Table) {
        for (name, column) in other.columns {
            self.push(name, column);
        }
    }

    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, column)| column)
    }

    /// The float column `name` (panics when absent or of another type: for tests).
    pub fn floats(&self, name: &str) -> &[f64] {
        self.get(name)
            .and_then(Column::as_float)
            .unwrap_or_else(|| panic!("no float field {name}"))
    }

    /// The int column `name` (panics when absent or of another type: for tests).
    pub fn ints(&self, name: &str) -> &[i64] {
        self.get(name)
            .and_then(Column::as_int)
            .unwrap_or_else(|| panic!("no int field {name}"))
    }

    /// The bool column `name` (panics when absent or of another type: for tests).
    pub fn bools(&self, name: &str) -> &[bool] {
        self.get(name)
            .and_then(Column::as_bool)
            .unwrap_or_else(|| panic!("no bool field {name}"))
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(name, _)| *name).collect()
    }

    pub fn into_columns(self) -> Vec<(&'static str, Column)> {
        self.columns
    }
}

/// Declares a row struct of named fields (`f64`, `i64` or `bool`) with `FIELDS` (their
/// names in order) and `table(&rows)`, the rows as one [`Table`] with a column per field.
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $kind:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $kind ),*
        }

        impl $name {
            /// The names of the fields, in order: the kernel's result fields.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The rows as one table, a column per field.
            pub fn table(rows: &[$name]) -> $crate::detect::table::Table {
                let mut table = $crate::detect::table::Table::new();
                $(
                    table.push(
                        stringify!($field),
                        rows.iter().map(|row| row.$field).collect::<Vec<$kind>>(),
                    );
                )*
                table
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::record! {
        /// A test row.
        pub struct Sample {
            count: i64,
            mean: f64,
            detected: bool,
        }
    }

    #[test]
    fn records_become_named_columns() {
        let rows = [
            Sample {
                count: 3,
                mean: 1.5,
                detected: true,
            },
            Sample {
                count: 0,
                mean: f64::NAN,
                detected: false,
            },
        ];
        let table = Sample::table(&rows);
        assert_eq!(Sample::FIELDS, &["count", "mean", "detected"]);
        assert_eq!(table.names(), Sample::FIELDS);
        assert_eq!(table.ints("count"), &[3, 0]);
        assert_eq!(table.floats("mean")[0], 1.5);
        assert_eq!(table.bools("detected"), &[true, false]);
        assert!(table.get("missing").is_none());
    }
}
