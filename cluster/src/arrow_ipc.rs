//! Record batches as Arrow IPC stream bytes, the form tables travel in between nodes.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

/// Writes `batch` as one IPC stream: its schema, then the batch.
///
/// # Errors
/// Returns the Arrow error of a batch that cannot be encoded.
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.into_inner()
}

/// Reads every batch of one IPC stream.
///
/// # Errors
/// Returns the Arrow error of bytes that are not an IPC stream.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    StreamReader::try_new(Cursor::new(bytes), None)?.collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_batch_comes_back_as_it_went() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("reason", DataType::Utf8, false),
            Field::new("count", DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["too_late", "stuck_sensor"])),
                Arc::new(UInt64Array::from(vec![3, 1])),
            ],
        )
        .expect("a batch");
        let bytes = encode(&batch).expect("encodes");
        assert_eq!(decode(&bytes).expect("decodes"), vec![batch]);
        assert!(decode(&bytes[..bytes.len() / 2]).is_err(), "a cut stream");
    }
}
