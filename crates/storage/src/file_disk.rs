//! [`FileDisk`]: the [`Disk`] trait over a real directory, with real `fsync`.
//!
//! This is the one place in the protocol-core crates that touches the file system. It does
//! nothing clever: each trait method is one or two `std::fs` calls, `sync` is
//! [`File::sync_all`], and `sync_dir` opens the directory itself and calls `sync_all` on it,
//! which is what makes a create, rename or remove durable on Linux (without it, a new file
//! synced with `fsync` can still vanish in a power loss because its directory entry did not
//! reach the disk).
//!
//! Handles of files being written are kept open between calls (the WAL appends to one file
//! many times per sync); a rename or remove forgets the handles of the names it touches.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::disk::{Disk, Result, StorageError, check_range, validate_name};

/// A [`Disk`] backed by a directory of real files.
#[derive(Debug)]
pub struct FileDisk {
    /// The directory holding the files.
    dir: PathBuf,
    /// Open read-write handles of files written through this value, by name.
    handles: HashMap<String, File>,
}

/// Converts an I/O error of `op` on `name`, keeping "not found" as its own variant.
fn io_error(op: &'static str, name: &str, source: io::Error) -> StorageError {
    if source.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound { name: name.to_owned() }
    } else {
        StorageError::Io { op, name: name.to_owned(), source }
    }
}

impl FileDisk {
    /// Opens the directory `dir`, creating it (and its parents) if needed. Creating it is made
    /// durable by syncing its parent directory.
    pub fn open(dir: &Path) -> Result<FileDisk> {
        let shown = dir.display().to_string();
        let existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(|e| io_error("create_dir", &shown, e))?;
        if let Some(parent) = dir.parent().filter(|p| !existed && !p.as_os_str().is_empty()) {
            sync_directory(parent).map_err(|e| io_error("sync_dir", &shown, e))?;
        }
        Ok(FileDisk { dir: dir.to_path_buf(), handles: HashMap::new() })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    /// The cached read-write handle of `name`, opening (and with `create`, creating) it.
    fn handle(&mut self, op: &'static str, name: &str, create: bool) -> Result<&mut File> {
        let path = self.path(name)?;
        if !self.handles.contains_key(name) {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .open(&path)
                .map_err(|e| io_error(op, name, e))?;
            self.handles.insert(name.to_owned(), file);
        }
        Ok(self.handles.get_mut(name).expect("inserted above"))
    }

    /// The length of an open handle.
    fn handle_len(op: &'static str, name: &str, file: &File) -> Result<u64> {
        Ok(file.metadata().map_err(|e| io_error(op, name, e))?.len())
    }
}

/// `fsync` of a directory: open it and sync the handle.
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for FileDisk {
    fn list(&self) -> Result<Vec<String>> {
        let shown = self.dir.display().to_string();
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io_error("list", &shown, e))? {
            let entry = entry.map_err(|e| io_error("list", &shown, e))?;
            let is_file = entry.file_type().map_err(|e| io_error("list", &shown, e))?.is_file();
            let Ok(name) = entry.file_name().into_string() else { continue };
            if is_file && validate_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path(name)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("exists", name, e)),
        }
    }

    fn len(&self, name: &str) -> Result<u64> {
        let path = self.path(name)?;
        Ok(fs::metadata(&path).map_err(|e| io_error("len", name, e))?.len())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        fs::read(&path).map_err(|e| io_error("read", name, e))
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        let mut file = File::open(&path).map_err(|e| io_error("read_at", name, e))?;
        let file_len = Self::handle_len("read_at", name, &file)?;
        check_range("read_at", name, offset, len as u64, file_len)?;
        let mut buf = vec![0; len];
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_error("read_at", name, e))?;
        file.read_exact(&mut buf).map_err(|e| io_error("read_at", name, e))?;
        Ok(buf)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let file = self.handle("append", name, true)?;
        file.seek(SeekFrom::End(0)).map_err(|e| io_error("append", name, e))?;
        file.write_all(data).map_err(|e| io_error("append", name, e))
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        let file = self.handle("write_at", name, false)?;
        let file_len = Self::handle_len("write_at", name, file)?;
        check_range("write_at", name, offset, 0, file_len)?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_error("write_at", name, e))?;
        file.write_all(data).map_err(|e| io_error("write_at", name, e))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<()> {
        let file = self.handle("truncate", name, false)?;
        let file_len = Self::handle_len("truncate", name, file)?;
        check_range("truncate", name, len, 0, file_len)?;
        file.set_len(len).map_err(|e| io_error("truncate", name, e))
    }

    fn sync(&mut self, name: &str) -> Result<()> {
        let file = self.handle("sync", name, false)?;
        file.sync_all().map_err(|e| io_error("sync", name, e))
    }

    fn sync_dir(&mut self) -> Result<()> {
        sync_directory(&self.dir).map_err(|e| io_error("sync_dir", "", e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let (from_path, to_path) = (self.path(from)?, self.path(to)?);
        self.handles.remove(from);
        self.handles.remove(to);
        fs::rename(&from_path, &to_path).map_err(|e| io_error("rename", from, e))
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        self.handles.remove(name);
        fs::remove_file(&path).map_err(|e| io_error("remove", name, e))
    }
}
