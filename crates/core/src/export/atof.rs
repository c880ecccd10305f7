//! ATOF JSONL file export: one event per line, in delivery order, after sanitization.
//!
//! Writes go through a buffer and reach the file on `flush`/`shutdown` (or when the buffer
//! fills). The exporter is a subscriber, so it sees exactly what the runtime delivered, and
//! flush and close run on the dispatcher after every earlier event: once `Runtime::flush`
//! returns, every event emitted before it is on disk.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::middleware::Subscriber;

/// Whether an existing file is kept or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileMode {
    #[default]
    Append,
    Overwrite,
}

impl FileMode {
    pub fn parse(s: &str) -> Result<FileMode> {
        match s {
            "append" => Ok(FileMode::Append),
            "overwrite" => Ok(FileMode::Overwrite),
            other => Err(Error::invalid_argument(format!("mode: '{other}' is not one of append, overwrite"))),
        }
    }
}

/// A subscriber that appends ATOF JSONL to a file.
pub struct AtofFileExporter {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
    written: AtomicU64,
    failed: AtomicU64,
}

impl AtofFileExporter {
    /// Opens (creating directories as needed) `path` in `mode`.
    pub fn open(path: impl AsRef<Path>, mode: FileMode) -> Result<AtofFileExporter> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid_argument(format!("output_directory '{}': cannot create: {e}", dir.display())))?;
        }
        let mut opts = OpenOptions::new();
        opts.create(true);
        match mode {
            FileMode::Append => opts.append(true),
            FileMode::Overwrite => opts.write(true).truncate(true),
        };
        let file = opts
            .open(&path)
            .map_err(|e| Error::invalid_argument(format!("filename '{}': cannot open for writing: {e}", path.display())))?;
        Ok(AtofFileExporter {
            path,
            out: Mutex::new(BufWriter::with_capacity(64 * 1024, file)),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Events written (buffered or on disk).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    /// Events that could not be written.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Upstream, format!("ATOF file '{}': {what}: {e}", self.path.display()))
    }
}

impl Subscriber for AtofFileExporter {
    fn on_event(&self, event: &Event) -> Result<()> {
        let mut line = Vec::with_capacity(384 + event.data.as_json().len());
        event.write_json(&mut line);
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        match out.write_all(&line) {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(self.io_error("write failed", e))
            }
        }
    }

    fn flush(&self) -> Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.flush().map_err(|e| self.io_error("flush failed", e))
    }
}

impl Drop for AtofFileExporter {
    fn drop(&mut self) {
        if let Ok(out) = self.out.get_mut() {
            let _ = out.flush();
        }
    }
}
