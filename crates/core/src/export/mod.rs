//! Exporters: subscribers that turn the event stream into files and traces.

pub mod atif;
pub mod atof;
pub mod atof_stream;
pub mod sink;
