//! Query parameters, for prepared statements: `?` placeholders (what ADBC and JDBC clients
//! write) numbered into DataFusion's `$1`, `$2`, …; the parameters a planned query expects, as
//! an Arrow schema a client binds against; and one bound row of values checked against it and
//! turned into DataFusion's parameter values.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::error::PipelineError;

/// Returns `sql` with each bare `?` placeholder numbered in order (`$1`, `$2`, …) and each
/// `?N` written `$N`, so DataFusion tells them apart; text inside strings, quoted names and
/// comments is left as it is.
///
/// # Errors
/// Returns [`PipelineError::Sql`] for text that does not tokenize, and for a query that mixes
/// bare `?` with numbered placeholders (which value would go where is unclear).
pub fn numbered_placeholders(sql: &str) -> Result<String, PipelineError> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| PipelineError::Sql(format!("the query does not tokenize: {e}")))?;
    let mut question_marks = Vec::new();
    let mut numbered = false;
    for token in &tokens {
        if let Token::Placeholder(name) = &token.token {
            match name.strip_prefix('?') {
                Some(number) => question_marks.push((token.span.start, number.to_string())),
                None => numbered = true,
            }
        }
    }
    let bare = question_marks.iter().any(|(_, number)| number.is_empty());
    if bare && (numbered || question_marks.iter().any(|(_, n)| !n.is_empty())) {
        return Err(PipelineError::Sql(
            "the query mixes ? with numbered placeholders; use either ? alone or $1, $2, …".into(),
        ));
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(at, _)| at + 1))
        .collect();
    let mut rewritten = String::with_capacity(sql.len() + question_marks.len());
    let mut copied_to = 0;
    for (order, (start, number)) in question_marks.iter().enumerate() {
        let at = byte_offset(sql, &line_starts, *start)?;
        rewritten.push_str(&sql[copied_to..at]);
        if number.is_empty() {
            rewritten.push_str(&format!("${}", order + 1));
        } else {
            rewritten.push_str(&format!("${number}"));
        }
        copied_to = at + 1 + number.len();
    }
    rewritten.push_str(&sql[copied_to..]);
    Ok(rewritten)
}

/// The byte offset in `sql` of a tokenizer location (line and column count from 1, columns in
/// characters).
fn byte_offset(sql: &str, line_starts: &[usize], at: Location) -> Result<usize, PipelineError> {
    let lost = || PipelineError::Sql(format!("placeholder position {at} lies outside the query"));
    let line = usize::try_from(at.line).map_err(|_| lost())?;
    let column = usize::try_from(at.column).map_err(|_| lost())?;
    let line_start = *line_starts
        .get(line.checked_sub(1).ok_or_else(lost)?)
        .ok_or_else(lost)?;
    sql[line_start..]
        .char_indices()
        .nth(column.checked_sub(1).ok_or_else(lost)?)
        .map(|(within, _)| line_start + within)
        .ok_or_else(lost)
}

/// The parameters `plan` expects: one nullable field per position, named `$1`, `$2`, …, of
/// the type DataFusion inferred from where it is used (`Null` where it could not tell).
///
/// # Errors
/// Returns [`PipelineError::Sql`] for a named placeholder (`$name`): values are bound by
/// position.
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, PipelineError> {
    let mut by_position = BTreeMap::new();
    for (id, field) in plan.get_parameter_fields().map_err(super::sql_error)? {
        let position = id
            .strip_prefix('$')
            .and_then(|number| number.parse::<usize>().ok())
            .filter(|position| *position > 0)
            .ok_or_else(|| {
                PipelineError::Sql(format!(
                    "placeholder {id} is named; bind values by position: ?, or $1, $2, …"
                ))
            })?;
        by_position.insert(position, field.map(|f| f.data_type().clone()));
    }
    let count = by_position.keys().next_back().copied().unwrap_or(0);
    let fields: Vec<Field> = (1..=count)
        .map(|position| {
            let data_type = by_position
                .get(&position)
                .cloned()
                .flatten()
                .unwrap_or(DataType::Null);
            Field::new(format!("${position}"), data_type, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Checks one bound row against the `expected` parameters and returns its values, each cast
/// to the type its placeholder expects (a client's 64-bit integer for a float column, say).
///
/// # Errors
/// Returns [`PipelineError::Sql`] unless exactly one row is bound with one value per
/// parameter, and for a value that cannot be cast to its parameter's type.
pub fn bind(row: &RecordBatch, expected: &Schema) -> Result<ParamValues, PipelineError> {
    if row.num_rows() != 1 {
        return Err(PipelineError::Sql(format!(
            "a query runs with exactly one row of parameters; {} rows were bound",
            row.num_rows()
        )));
    }
    if row.num_columns() != expected.fields().len() {
        return Err(PipelineError::Sql(format!(
            "the query has {} parameters; {} values were bound",
            expected.fields().len(),
            row.num_columns()
        )));
    }
    let mut values = Vec::with_capacity(row.num_columns());
    for (column, field) in row.columns().iter().zip(expected.fields()) {
        let value = ScalarValue::try_from_array(column, 0).map_err(super::sql_error)?;
        let wanted = field.data_type();
        let value = if *wanted == DataType::Null || value.data_type() == *wanted {
            value
        } else {
            value.cast_to(wanted).map_err(|_| {
                PipelineError::Sql(format!(
                    "parameter {}: the bound {} value {value} cannot be used as {wanted}",
                    field.name(),
                    value.data_type()
                ))
            })?
        };
        values.push(value);
    }
    Ok(ParamValues::from(values))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn question_marks_are_numbered_in_order_outside_strings_and_comments() {
        assert_eq!(
            numbered_placeholders("SELECT '?' AS q, \"a?\" FROM t -- why?\nWHERE x = ? AND y > ?")
                .expect("tokenizes"),
            "SELECT '?' AS q, \"a?\" FROM t -- why?\nWHERE x = $1 AND y > $2"
        );
        assert_eq!(
            numbered_placeholders("SELECT 'ü' FROM t WHERE x = ?").expect("tokenizes"),
            "SELECT 'ü' FROM t WHERE x = $1",
            "columns count characters, not bytes"
        );
        assert_eq!(
            numbered_placeholders("SELECT * FROM t WHERE x = $2 OR y = $1").expect("tokenizes"),
            "SELECT * FROM t WHERE x = $2 OR y = $1",
            "numbered placeholders stay"
        );
        assert_eq!(
            numbered_placeholders("SELECT * FROM t WHERE x = ?2").expect("tokenizes"),
            "SELECT * FROM t WHERE x = $2"
        );
        let mixed = numbered_placeholders("SELECT * FROM t WHERE x = ? OR y = $1");
        assert!(
            matches!(&mixed, Err(PipelineError::Sql(m)) if m.contains("mixes")),
            "{mixed:?}"
        );
    }

    #[test]
    fn one_bound_row_is_checked_and_cast_to_the_expected_types() {
        let expected = Schema::new(vec![
            Field::new("$1", DataType::Utf8, true),
            Field::new("$2", DataType::Float64, true),
        ]);
        let row = |rows: usize| {
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("0", DataType::Utf8, true),
                    Field::new("1", DataType::Int64, true),
                ])),
                vec![
                    Arc::new(StringArray::from(vec!["XJ0001"; rows])),
                    Arc::new(Int64Array::from(vec![30; rows])),
                ],
            )
            .expect("a row")
        };
        let ParamValues::List(values) = bind(&row(1), &expected).expect("binds") else {
            panic!("positional values");
        };
        let values: Vec<ScalarValue> = values.into_iter().map(|v| v.value).collect();
        assert_eq!(
            values,
            vec![
                ScalarValue::Utf8(Some("XJ0001".into())),
                ScalarValue::Float64(Some(30.0))
            ]
        );
        let two_rows = bind(&row(2), &expected);
        assert!(
            matches!(&two_rows, Err(PipelineError::Sql(m)) if m.contains("2 rows")),
            "{two_rows:?}"
        );
        let three = Schema::new(vec![
            Field::new("$1", DataType::Utf8, true),
            Field::new("$2", DataType::Float64, true),
            Field::new("$3", DataType::Null, true),
        ]);
        let too_few = bind(&row(1), &three);
        assert!(
            matches!(&too_few, Err(PipelineError::Sql(m)) if m.contains("3 parameters; 2 values")),
            "{too_few:?}"
        );
        let wrong_type = Schema::new(vec![
            Field::new("$1", DataType::Int32, true),
            Field::new("$2", DataType::Float64, true),
        ]);
        let not_a_number = bind(&row(1), &wrong_type);
        assert!(
            matches!(&not_a_number, Err(PipelineError::Sql(m)) if m.starts_with("parameter $1")),
            "{not_a_number:?}"
        );
    }
}
