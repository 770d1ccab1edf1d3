//! Disk storage: every VDI is a sparse file `<state>/<pool>/vdis/<uuid>.img` of its
//! `virtual_size`, so a 2 TiB disk costs only the blocks written to it.
//!
//! Snapshots and clones are copy-on-write, as on a real SR: the new image is a hard link to the
//! source's, made in constant time whatever the disk size, and the first write to any name of a
//! shared image splits it ([`Storage::prepare_write`]) so that the others keep the content they
//! had. Hard links between the directories of two pools are something else, the synchronous
//! storage mirror of DR (`mirror.rs`), and are never split here.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The disk images of one pool.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    dir: PathBuf,
    /// Held while a shared image is split, so that two writers never split it at once.
    split_lock: Arc<Mutex<()>>,
}

/// Bytes moved per step when copying an image.
const COPY_BLOCK: usize = 1 << 20;

impl Storage {
    /// Storage under `dir` (created when missing).
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            split_lock: Arc::default(),
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
        self.prepare_write(uuid)?;
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
        self.prepare_write(uuid)?;
        let mut file = OpenOptions::new().write(true).open(self.path(uuid))?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }

    /// Copy an image, keeping it sparse (all-zero blocks become holes), at `size` bytes.
    #[cfg(test)]
    pub(crate) fn copy(&self, from: &str, to: &str, size: u64) -> std::io::Result<()> {
        copy_sparse(&self.path(from), &self.path(to), size)
    }

    /// Give image `to` the content of image `from` in constant time: a hard link, split on the
    /// first write to either ([`Storage::prepare_write`]). Falls back to a sparse copy where
    /// the file system has no hard links; a missing `from` gives `size` bytes of holes.
    pub(crate) fn share(&self, from: &str, to: &str, size: u64) -> std::io::Result<()> {
        let (source, target) = (self.path(from), self.path(to));
        match std::fs::hard_link(&source, &target) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !source.exists() => {
                File::create(&target)?.set_len(size)
            }
            Err(_) => copy_sparse(&source, &target, size),
        }
    }

    /// Called before anything writes to image `uuid`: if other images of this pool share its
    /// data (snapshots or clones made by [`Storage::share`]), split them apart so that the
    /// write reaches `uuid` alone. The written image moves to a copy of its own and the others
    /// keep the file they share, so that a reader of a snapshot that has the file open (an
    /// export in progress) keeps reading the snapshot's content; when the image is also the
    /// live mirror of another pool (a hard link across pool directories), it stays in place and
    /// the others move instead, so that the mirror keeps mirroring.
    pub(crate) fn prepare_write(&self, uuid: &str) -> std::io::Result<()> {
        let path = self.path(uuid);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.nlink() > 1 => {}
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        }
        let _split = self
            .split_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // looked at again under the lock: another writer may have split it meanwhile
        let meta = std::fs::metadata(&path)?;
        let peers = self.names_sharing(&path, &meta)?;
        if peers.is_empty() {
            return Ok(());
        }
        let size = meta.len();
        if meta.nlink() == 1 + peers.len() as u64 {
            replace_image(&path, &path, size, Replacement::Copy)
        } else {
            let (first, rest) = peers.split_first().expect("not empty");
            replace_image(&path, first, size, Replacement::Copy)?;
            for peer in rest {
                replace_image(first, peer, size, Replacement::Link)?;
            }
            Ok(())
        }
    }

    /// Open image `uuid` to read and write in place, split from any snapshot first.
    pub(crate) fn open_for_update(&self, uuid: &str) -> std::io::Result<File> {
        self.prepare_write(uuid)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(uuid))
    }

    /// [`Storage::prepare_write`] on the blocking pool, for async writers (a split copies the
    /// image).
    pub(crate) async fn prepare_write_async(&self, uuid: &str) -> std::io::Result<()> {
        let storage = self.clone();
        let uuid = uuid.to_owned();
        tokio::task::spawn_blocking(move || storage.prepare_write(&uuid))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The other images in this pool's directory that are the same file as `path`.
    fn names_sharing(
        &self,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut peers = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let candidate = entry.path();
            if candidate == path || candidate.extension().is_none_or(|e| e != "img") {
                continue;
            }
            let Ok(other) = entry.metadata() else {
                continue;
            };
            if other.ino() == meta.ino() && other.dev() == meta.dev() {
                peers.push(candidate);
            }
        }
        Ok(peers)
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
        self.prepare_write(to)?;
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

/// How [`replace_image`] gives the target the source's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replacement {
    /// The same file (a hard link; a copy where links are impossible).
    Link,
    /// An independent sparse copy.
    Copy,
}

/// Replace the file at `target` with the content of `source` (which may be `target` itself),
/// through a temporary name and a rename, so that nobody sees a half-written image.
pub(crate) fn replace_image(
    source: &Path,
    target: &Path,
    size: u64,
    how: Replacement,
) -> std::io::Result<()> {
    let mut temporary = target.as_os_str().to_owned();
    temporary.push(".replace-tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let linked = how == Replacement::Link && std::fs::hard_link(source, &temporary).is_ok();
    let replaced = if linked {
        Ok(())
    } else {
        copy_sparse(source, &temporary, size)
    }
    .and_then(|()| std::fs::rename(&temporary, target));
    if replaced.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    replaced
}

/// Copy the file `from` to `to`, keeping it sparse (all-zero blocks become holes), at `size`
/// bytes; a missing source gives an image of holes. Only the data regions of the source are
/// read (`SEEK_DATA` / `SEEK_HOLE`), so a large, mostly empty disk copies in the time of its
/// data.
pub(crate) fn copy_sparse(from: &Path, to: &Path, size: u64) -> std::io::Result<()> {
    let mut source = match File::open(from) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return File::create(to)?.set_len(size);
        }
        Err(err) => return Err(err),
    };
    let end = source.metadata()?.len();
    let mut target = File::create(to)?;
    let mut block = vec![0_u8; COPY_BLOCK];
    // compared as slices (a memcmp, fast even unoptimised) to skip the holes
    let zeros = vec![0_u8; COPY_BLOCK];
    let mut offset = 0_u64;
    while offset < end {
        let Some((data, hole)) = next_data(&source, offset, end)? else {
            break;
        };
        offset = data;
        source.seek(SeekFrom::Start(offset))?;
        while offset < hole {
            let want = COPY_BLOCK.min((hole - offset) as usize);
            let n = read_full(&mut source, &mut block[..want])?;
            if n == 0 {
                break;
            }
            if block[..n] != zeros[..n] {
                target.seek(SeekFrom::Start(offset))?;
                target.write_all(&block[..n])?;
            }
            offset += n as u64;
        }
    }
    target.set_len(size)
}

/// The next data region of `file` at or after `offset`, as `(start, end)`; `None` when only
/// holes remain. Where the file system cannot tell, everything up to `end` is data.
fn next_data(file: &File, offset: u64, end: u64) -> std::io::Result<Option<(u64, u64)>> {
    use rustix::fs::{SeekFrom as Whence, seek};
    let start = match seek(file, Whence::Data(offset)) {
        Ok(start) => start,
        Err(rustix::io::Errno::NXIO) => return Ok(None),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => {
            return Ok(Some((offset, end)));
        }
        Err(err) => return Err(err.into()),
    };
    let stop = match seek(file, Whence::Hole(start)) {
        Ok(stop) => stop.min(end),
        Err(_) => end,
    };
    Ok(Some((start, stop)))
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

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn shared_images_split_on_the_first_write_to_any_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        storage.create("disk", 8 << 20).unwrap();
        storage.write_at("disk", 1 << 20, b"before").unwrap();
        storage.share("disk", "snap1", 8 << 20).unwrap();
        storage.share("disk", "snap2", 8 << 20).unwrap();
        assert_eq!(inode(&storage.path("disk")), inode(&storage.path("snap1")));

        // the VM writes: both snapshots keep the old content, and their file
        let old_inode = inode(&storage.path("snap1"));
        storage.write_at("disk", 1 << 20, b"after!").unwrap();
        for snap in ["snap1", "snap2"] {
            let data = std::fs::read(storage.path(snap)).unwrap();
            assert_eq!(&data[1 << 20..(1 << 20) + 6], b"before", "{snap}");
            assert_eq!(inode(&storage.path(snap)), old_inode, "{snap}");
        }
        let data = std::fs::read(storage.path("disk")).unwrap();
        assert_eq!(&data[1 << 20..(1 << 20) + 6], b"after!");
        assert_eq!(data.len(), 8 << 20);

        // a write to one snapshot leaves the other alone
        storage.write_at("snap2", 0, b"mine").unwrap();
        assert_eq!(
            &std::fs::read(storage.path("snap1")).unwrap()[..4],
            b"\0\0\0\0"
        );
        assert_eq!(&std::fs::read(storage.path("snap2")).unwrap()[..4], b"mine");
        assert_eq!(std::fs::metadata(storage.path("snap1")).unwrap().nlink(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|path| path.extension().is_none_or(|e| e != "img"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_mirrored_image_stays_in_place_and_its_snapshots_move() {
        let root = tempfile::tempdir().unwrap();
        let primary = Storage::open(&root.path().join("primary")).unwrap();
        let replica = Storage::open(&root.path().join("replica")).unwrap();
        primary.create("disk", 4 << 20).unwrap();
        primary.write_at("disk", 0, b"v1").unwrap();
        // the DR mirror: the replica pool's image is the primary's file
        std::fs::hard_link(primary.path("disk"), replica.path("disk")).unwrap();
        primary.share("disk", "snap", 4 << 20).unwrap();

        primary.write_at("disk", 0, b"v2").unwrap();
        assert_eq!(inode(&primary.path("disk")), inode(&replica.path("disk")));
        assert_eq!(&std::fs::read(replica.path("disk")).unwrap()[..2], b"v2");
        assert_eq!(&std::fs::read(primary.path("snap")).unwrap()[..2], b"v1");
    }

    #[test]
    fn sparse_copies_read_only_the_data_and_keep_the_holes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let size = 1 << 30;
        storage.create("big", size).unwrap();
        storage.write_at("big", 0, b"head").unwrap();
        storage.write_at("big", (512 << 20) + 3, b"middle").unwrap();
        storage.write_at("big", size - 4, b"tail").unwrap();
        storage.copy("big", "copy", size).unwrap();
        let copy = storage.path("copy");
        let meta = std::fs::metadata(&copy).unwrap();
        assert_eq!(meta.len(), size);
        assert!(
            meta.blocks() * 512 < 16 << 20,
            "still sparse: {} blocks",
            meta.blocks()
        );
        let mut file = File::open(&copy).unwrap();
        let mut read_at = |offset: u64, len: usize| {
            let mut buf = vec![0; len];
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.read_exact(&mut buf).unwrap();
            buf
        };
        assert_eq!(read_at(0, 4), b"head");
        assert_eq!(read_at((512 << 20) + 3, 6), b"middle");
        assert_eq!(read_at(size - 4, 4), b"tail");
        assert_eq!(read_at(100 << 20, 4), b"\0\0\0\0");
    }
}
