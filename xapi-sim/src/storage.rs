//! Disk storage: every VDI is a sparse file `<state>/<pool>/vdis/<uuid>.img` of its
//! `virtual_size`, so a 2 TiB disk costs only the blocks written to it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The disk images of one pool.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    dir: PathBuf,
}

/// Bytes moved per step when copying an image.
const COPY_BLOCK: usize = 1 << 20;

impl Storage {
    /// Storage under `dir` (created when missing).
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The image file of a VDI.
    pub(crate) fn path(&self, uuid: &str) -> PathBuf {
        self.dir.join(format!("{uuid}.img"))
    }

    /// Create (or truncate) the image of a VDI: `size` bytes, all holes.
    pub(crate) fn create(&self, uuid: &str, size: u64) -> std::io::Result<()> {
        let file = File::create(self.path(uuid))?;
        file.set_len(size)
    }

    /// Grow or shrink an image, creating it when missing.
    pub(crate) fn resize(&self, uuid: &str, size: u64) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path(uuid))?;
        file.set_len(size)
    }

    /// Remove an image; a missing one is not an error.
    pub(crate) fn destroy(&self, uuid: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(uuid)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Write `data` at `offset` of an image.
    pub(crate) fn write_at(&self, uuid: &str, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(self.path(uuid))?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }

    /// Copy an image, keeping it sparse (all-zero blocks become holes), at `size` bytes.
    pub(crate) fn copy(&self, from: &str, to: &str, size: u64) -> std::io::Result<()> {
        copy_sparse(&self.path(from), &self.path(to), size)
    }

    /// Write the first `size` bytes of image `from` into the existing image `to` (`VDI.copy`
    /// with `into_vdi`). With `base`, only the blocks where `from` differs from `base` are
    /// written, as xapi's differential copy does (`to` is expected to hold `base` already).
    /// The extents written, as `(offset, length)`.
    pub(crate) fn copy_into(
        &self,
        from: &str,
        to: &str,
        base: Option<&str>,
        size: u64,
    ) -> std::io::Result<Vec<(u64, u64)>> {
        let mut source = File::open(self.path(from))?;
        let mut base = base.map(|b| File::open(self.path(b))).transpose()?;
        let mut target = OpenOptions::new().write(true).open(self.path(to))?;
        let mut block = vec![0_u8; COPY_BLOCK];
        let mut base_block = vec![0_u8; COPY_BLOCK];
        let mut written = Vec::new();
        let mut offset = 0_u64;
        while offset < size {
            let want = COPY_BLOCK.min((size - offset) as usize);
            let n = read_full(&mut source, &mut block[..want])?;
            block[n..want].fill(0);
            let differs = match &mut base {
                Some(base) => {
                    let m = read_full(base, &mut base_block[..want])?;
                    base_block[m..want].fill(0);
                    block[..want] != base_block[..want]
                }
                None => true,
            };
            if differs {
                target.seek(SeekFrom::Start(offset))?;
                target.write_all(&block[..want])?;
                written.push((offset, want as u64));
            }
            offset += want as u64;
        }
        Ok(written)
    }
}

/// Copy the file `from` to `to`, keeping it sparse (all-zero blocks become holes), at `size`
/// bytes; a missing source gives an image of holes.
pub(crate) fn copy_sparse(from: &Path, to: &Path, size: u64) -> std::io::Result<()> {
    let mut source = match File::open(from) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return File::create(to)?.set_len(size);
        }
        Err(err) => return Err(err),
    };
    let mut target = File::create(to)?;
    let mut block = vec![0_u8; COPY_BLOCK];
    // compared as slices (a memcmp, fast even unoptimised) to skip the holes
    let zeros = vec![0_u8; COPY_BLOCK];
    let mut offset = 0_u64;
    loop {
        let n = read_full(&mut source, &mut block)?;
        if n == 0 {
            break;
        }
        if block[..n] != zeros[..n] {
            target.seek(SeekFrom::Start(offset))?;
            target.write_all(&block[..n])?;
        }
        offset += n as u64;
    }
    target.set_len(size)
}

/// Read until `buf` is full or the file ends; the number of bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_sparse_and_copies_keep_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        storage.create("a", 64 << 20).unwrap();
        storage.write_at("a", 5 << 20, b"hello").unwrap();
        storage.copy("a", "b", 64 << 20).unwrap();
        let data = std::fs::read(storage.path("b")).unwrap();
        assert_eq!(data.len(), 64 << 20);
        assert_eq!(&data[5 << 20..(5 << 20) + 5], b"hello");
        storage.resize("b", 128 << 20).unwrap();
        assert_eq!(
            std::fs::metadata(storage.path("b")).unwrap().len(),
            128 << 20
        );
        storage.destroy("b").unwrap();
        storage.destroy("b").unwrap();
        assert!(!storage.path("b").exists());
    }

    #[test]
    fn copy_into_writes_only_what_differs_from_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let size = 4 * COPY_BLOCK as u64;
        for image in ["base", "source", "target"] {
            storage.create(image, size).unwrap();
        }
        storage.write_at("base", 0, b"same").unwrap();
        storage.write_at("source", 0, b"same").unwrap();
        storage
            .write_at("source", 2 * COPY_BLOCK as u64, b"new")
            .unwrap();
        storage
            .write_at("target", 3 * COPY_BLOCK as u64, b"kept")
            .unwrap();
        let written = storage
            .copy_into("source", "target", Some("base"), size)
            .unwrap();
        assert_eq!(written, vec![(2 * COPY_BLOCK as u64, COPY_BLOCK as u64)]);
        let data = std::fs::read(storage.path("target")).unwrap();
        assert_eq!(&data[2 * COPY_BLOCK..2 * COPY_BLOCK + 3], b"new");
        assert_eq!(&data[3 * COPY_BLOCK..3 * COPY_BLOCK + 4], b"kept");
        assert_eq!(
            &data[..4],
            b"\0\0\0\0",
            "blocks equal to the base are left alone"
        );

        let written = storage.copy_into("source", "target", None, size).unwrap();
        assert_eq!(written.len(), 4);
        let data = std::fs::read(storage.path("target")).unwrap();
        assert_eq!(&data[..4], b"same");
        assert_eq!(&data[3 * COPY_BLOCK..3 * COPY_BLOCK + 4], b"\0\0\0\0");
    }
}
