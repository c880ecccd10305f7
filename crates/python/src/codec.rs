//! Provider codecs (docs/codecs.md): decode/encode requests, decode responses, aggregate
//! streams. With the codec `auto`, a shape no codec recognizes gives `None`.

use baton::codec::{self, Codec, CodecKind};
use pyo3::prelude::*;
use serde_json::Value;

use crate::{convert, errors};

fn parse(py: Python<'_>, name: &str) -> PyResult<Codec> {
    errors::check(py, Codec::parse(name))
}

fn out(py: Python<'_>, kind: Option<CodecKind>, f: impl FnOnce(CodecKind) -> baton::Result<Value>) -> PyResult<Py<PyAny>> {
    match kind {
        None => Ok(py.None()),
        Some(k) => convert::to_py(py, &errors::check(py, f(k))?),
    }
}

/// Parses an optional codec name (the `codec` / `response_codec` options of LLM calls).
pub fn option(py: Python<'_>, name: Option<&str>) -> PyResult<Option<Codec>> {
    name.map(|n| parse(py, n)).transpose()
}

#[pyfunction]
fn codec_decode_request(py: Python<'_>, codec: &str, request: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let c = parse(py, codec)?;
    let request = convert::to_value(request, "request")?;
    out(py, c.for_request(&request), |k| codec::decode_request(k, &request))
}

#[pyfunction]
fn codec_encode_request(py: Python<'_>, codec: &str, normalized: &Bound<'_, PyAny>, original: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let c = parse(py, codec)?;
    let (normalized, original) = (convert::to_value(normalized, "normalized")?, convert::to_value(original, "original")?);
    out(py, c.for_request(&original), |k| codec::encode_request(k, &normalized, &original))
}

#[pyfunction]
fn codec_decode_response(py: Python<'_>, codec: &str, response: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let c = parse(py, codec)?;
    let response = convert::to_value(response, "response")?;
    out(py, c.for_response(&response), |k| codec::decode_response_json(k, &response))
}

#[pyfunction]
fn codec_aggregate_stream(py: Python<'_>, codec: &str, chunks: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let c = parse(py, codec)?;
    let chunks = match convert::to_value(chunks, "chunks")? {
        Value::Array(a) => a,
        _ => return Err(errors::new_err(py, baton::ErrorKind::InvalidArgument, "chunks: expected a list")),
    };
    let kind = match c {
        Codec::Kind(k) => Some(k),
        Codec::Auto => chunks.iter().find_map(codec::detect_chunk),
    };
    out(py, kind, |k| codec::aggregate_stream(k, &chunks).map(|r| r.to_json()))
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(codec_decode_request, m)?)?;
    m.add_function(wrap_pyfunction!(codec_encode_request, m)?)?;
    m.add_function(wrap_pyfunction!(codec_decode_response, m)?)?;
    m.add_function(wrap_pyfunction!(codec_aggregate_stream, m)?)?;
    Ok(())
}
