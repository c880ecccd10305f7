//! Exporters: subscribers that turn the event stream into files and traces.

pub mod atof;
