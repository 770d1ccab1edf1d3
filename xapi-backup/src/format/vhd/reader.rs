//! A forward-only streaming VHD reader.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::bat::{UNALLOCATED, bat_len, decode_bat, sector_present};
use super::footer::{DiskType, VhdFooter};
use super::header::{DynamicHeader, ParentLocator};
use super::{SECTOR, VhdError};
use crate::Error;

/// A run of sectors present in the image: `data` belongs at disk `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdExtent {
    /// Disk offset.
    pub offset: u64,
    /// The bytes.
    pub data: Bytes,
}

/// A parent locator with its data decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLocator {
    /// The locator entry.
    pub locator: ParentLocator,
    /// The path or URL it holds, when its platform code is known.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Locator(usize),
    Block(u32),
}

#[derive(Debug)]
enum Kind {
    /// Fixed: raw data is streamed, holding the last sector back as the footer candidate.
    Fixed { held: Vec<u8>, data_len: u64 },
    /// Dynamic or differencing: items to visit in file order.
    Sparse {
        header: DynamicHeader,
        plan: Vec<(u64, Item)>,
        next: usize,
        /// Extents of the current block not yet handed out.
        pending: std::collections::VecDeque<VhdExtent>,
        locators: Vec<ResolvedLocator>,
    },
}

/// Reads a VHD stream front to back (as `export_raw_vdi?format=vhd` sends it).
///
/// Yields the extents present in the image, in file order. For a dynamic disk, absent
/// sectors are zero; for a differencing disk, absent sectors come from the parent named by
/// [`VhdReader::parent_locators`] and [`VhdReader::header`]. `next_extent` returns `Ok(None)`
/// only after the trailing footer has been checked: treat anything else as failure.
#[derive(Debug)]
pub struct VhdReader<R> {
    inner: R,
    position: u64,
    footer: Option<VhdFooter>,
    kind: Kind,
    finished: bool,
}

impl<R: AsyncRead + Unpin> VhdReader<R> {
    async fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .inner
                .read(&mut buf[done..])
                .await
                .map_err(crate::error::io("reading the VHD image"))?;
            if n == 0 {
                break;
            }
            done += n;
            self.position += n as u64;
        }
        Ok(done)
    }

    async fn fill(&mut self, buf: &mut [u8], context: &str) -> Result<(), Error> {
        if self.read_up_to(buf).await? < buf.len() {
            return Err(VhdError::Truncated {
                offset: self.position,
                context: context.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    async fn skip_to(&mut self, offset: u64, what: &str) -> Result<(), Error> {
        if offset < self.position {
            return Err(VhdError::NotStreamable {
                what: what.to_owned(),
                offset,
                position: self.position,
            }
            .into());
        }
        let mut scratch = [0u8; 8192];
        while self.position < offset {
            let n = ((offset - self.position).min(scratch.len() as u64)) as usize;
            self.fill(&mut scratch[..n], &format!("gap before {what}"))
                .await?;
        }
        Ok(())
    }

    /// Reads the footer copy, header, BAT and leading parent locators (or recognises a fixed
    /// VHD, whose footer is checked at the end).
    pub async fn open(inner: R) -> Result<Self, Error> {
        let mut r = Self {
            inner,
            position: 0,
            footer: None,
            kind: Kind::Fixed {
                held: Vec::new(),
                data_len: 0,
            },
            finished: false,
        };
        let mut first = [0u8; 512];
        let got = r.read_up_to(&mut first).await?;
        let sparse_footer = if got == 512 && VhdFooter::has_cookie(&first) {
            let f = VhdFooter::decode(&first, 0)?;
            (f.disk_type != DiskType::Fixed).then_some(f)
        } else {
            None
        };
        let Some(footer) = sparse_footer else {
            r.kind = Kind::Fixed {
                held: first[..got].to_vec(),
                data_len: 0,
            };
            return Ok(r);
        };
        if footer.data_offset < 512 {
            return Err(VhdError::BadField {
                structure: "footer",
                offset: 0,
                field: "data_offset",
                value: footer.data_offset,
                message: "dynamic header cannot overlap the footer copy",
            }
            .into());
        }
        r.skip_to(footer.data_offset, "dynamic header").await?;
        let mut hb = [0u8; 1024];
        r.fill(&mut hb, "dynamic header").await?;
        let header = DynamicHeader::decode(&hb, footer.data_offset)?;
        let needed = footer.current_size.div_ceil(u64::from(header.block_size));
        if u64::from(header.max_table_entries) < needed {
            return Err(VhdError::BadField {
                structure: "dynamic header",
                offset: footer.data_offset,
                field: "max_table_entries",
                value: u64::from(header.max_table_entries),
                message: "fewer BAT entries than the disk size needs",
            }
            .into());
        }
        r.skip_to(header.table_offset, "BAT").await?;
        let len = bat_len(header.max_table_entries);
        if len > 64 << 20 {
            return Err(VhdError::BadField {
                structure: "dynamic header",
                offset: footer.data_offset,
                field: "max_table_entries",
                value: u64::from(header.max_table_entries),
                message: "BAT larger than 64 MiB",
            }
            .into());
        }
        let mut bat_bytes = vec![0u8; len as usize];
        r.fill(&mut bat_bytes, "BAT").await?;
        let bat = decode_bat(&bat_bytes, header.max_table_entries);
        let mut plan: Vec<(u64, Item)> = bat
            .iter()
            .enumerate()
            .take(needed as usize)
            .filter(|(_, e)| **e != UNALLOCATED)
            .map(|(i, e)| (u64::from(*e) * SECTOR, Item::Block(i as u32)))
            .collect();
        if footer.disk_type == DiskType::Differencing {
            for (i, l) in header.locators.iter().enumerate() {
                if l.platform_code != [0; 4] && l.data_length > 0 {
                    plan.push((l.data_offset, Item::Locator(i)));
                }
            }
        }
        plan.sort_by_key(|(o, _)| *o);
        r.footer = Some(footer);
        r.kind = Kind::Sparse {
            header,
            plan,
            next: 0,
            pending: std::collections::VecDeque::new(),
            locators: Vec::new(),
        };
        // Locators normally sit before the first block: read them now so that the parent is
        // known before any delta data.
        while let Kind::Sparse { plan, next, .. } = &r.kind
            && let Some(&(offset, Item::Locator(i))) = plan.get(*next)
        {
            r.read_locator(offset, i).await?;
        }
        Ok(r)
    }

    async fn read_locator(&mut self, offset: u64, i: usize) -> Result<(), Error> {
        let Kind::Sparse { header, .. } = &self.kind else {
            return Ok(());
        };
        let locator = header.locators[i].clone();
        if locator.data_length > 64 * 1024 {
            return Err(VhdError::BadField {
                structure: "parent locator",
                offset,
                field: "data_length",
                value: u64::from(locator.data_length),
                message: "larger than 64 KiB",
            }
            .into());
        }
        self.skip_to(offset, "parent locator").await?;
        let mut data = vec![0u8; locator.data_length as usize];
        self.fill(&mut data, "parent locator").await?;
        let path = locator.decode_path(&data);
        if let Kind::Sparse { locators, next, .. } = &mut self.kind {
            locators.push(ResolvedLocator { locator, path });
            *next += 1;
        }
        Ok(())
    }

    /// The footer (for a fixed VHD, known only once the stream has ended).
    pub fn footer(&self) -> Option<&VhdFooter> {
        self.footer.as_ref()
    }

    /// The dynamic header (dynamic and differencing disks).
    pub fn header(&self) -> Option<&DynamicHeader> {
        match &self.kind {
            Kind::Sparse { header, .. } => Some(header),
            Kind::Fixed { .. } => None,
        }
    }

    /// The parent locators read so far, with their decoded paths.
    pub fn parent_locators(&self) -> &[ResolvedLocator] {
        match &self.kind {
            Kind::Sparse { locators, .. } => locators,
            Kind::Fixed { .. } => &[],
        }
    }

    /// The next extent present in the image; `Ok(None)` after the trailing footer checked out.
    pub async fn next_extent(&mut self) -> Result<Option<VhdExtent>, Error> {
        if self.finished {
            return Ok(None);
        }
        if matches!(self.kind, Kind::Fixed { .. }) {
            return self.next_fixed().await;
        }
        loop {
            let Kind::Sparse {
                header,
                plan,
                next,
                pending,
                ..
            } = &mut self.kind
            else {
                unreachable!("sparse branch of a sparse reader");
            };
            if let Some(e) = pending.pop_front() {
                return Ok(Some(e));
            }
            let Some(&(offset, item)) = plan.get(*next) else {
                self.finish_sparse().await?;
                return Ok(None);
            };
            let bitmap_len = header.bitmap_len() as usize;
            let block_size = u64::from(header.block_size);
            match item {
                Item::Locator(i) => self.read_locator(offset, i).await?,
                Item::Block(b) => {
                    self.skip_to(offset, &format!("block {b}")).await?;
                    let mut bitmap = vec![0u8; bitmap_len];
                    self.fill(&mut bitmap, &format!("bitmap of block {b}"))
                        .await?;
                    let mut data = BytesMut::zeroed(block_size as usize);
                    self.fill(&mut data, &format!("block {b}")).await?;
                    let data = data.freeze();
                    let size = self.footer.as_ref().map_or(0, |f| f.current_size);
                    let base = u64::from(b) * block_size;
                    let sectors = (block_size / SECTOR) as usize;
                    let Kind::Sparse { pending, next, .. } = &mut self.kind else {
                        unreachable!("sparse branch of a sparse reader");
                    };
                    let mut s = 0;
                    while s < sectors {
                        if !sector_present(&bitmap, s) {
                            s += 1;
                            continue;
                        }
                        let start = s;
                        while s < sectors && sector_present(&bitmap, s) {
                            s += 1;
                        }
                        let from = base + start as u64 * SECTOR;
                        let to = (base + s as u64 * SECTOR).min(size);
                        if from < to {
                            let lo = start * SECTOR as usize;
                            pending.push_back(VhdExtent {
                                offset: from,
                                data: data.slice(lo..lo + (to - from) as usize),
                            });
                        }
                    }
                    *next += 1;
                }
            }
        }
    }

    async fn finish_sparse(&mut self) -> Result<(), Error> {
        // Everything after the last block up to the end: the trailing footer is its last
        // sector and must equal the copy at the start.
        let mut tail = Vec::new();
        let mut scratch = vec![0u8; 64 * 1024];
        loop {
            let n = self.read_up_to(&mut scratch).await?;
            tail.extend_from_slice(&scratch[..n]);
            if tail.len() > 1024 {
                tail.drain(..tail.len() - 512);
            }
            if n < scratch.len() {
                break;
            }
        }
        if tail.len() < 512 {
            return Err(VhdError::Truncated {
                offset: self.position,
                context: "trailing footer".to_owned(),
            }
            .into());
        }
        let at = self.position - 512;
        let last: [u8; 512] = tail[tail.len() - 512..]
            .try_into()
            .expect("tail holds at least 512 bytes");
        let trailing = VhdFooter::decode(&last, at)?;
        if Some(&trailing) != self.footer.as_ref() {
            return Err(VhdError::FooterMismatch { offset: at }.into());
        }
        self.finished = true;
        Ok(())
    }

    async fn next_fixed(&mut self) -> Result<Option<VhdExtent>, Error> {
        let mut buf = vec![0u8; 1 << 20];
        let n = self.read_up_to(&mut buf).await?;
        let Kind::Fixed { held, data_len } = &mut self.kind else {
            unreachable!("fixed branch of a fixed reader");
        };
        held.extend_from_slice(&buf[..n]);
        if n == 0 {
            // End of stream: the held sector is the footer.
            if held.len() < 512 {
                return Err(VhdError::Truncated {
                    offset: self.position,
                    context: "footer of a fixed VHD".to_owned(),
                }
                .into());
            }
            let at = self.position - 512;
            let last: [u8; 512] = held[held.len() - 512..]
                .try_into()
                .expect("held holds at least 512 bytes");
            let footer = VhdFooter::decode(&last, at)?;
            let remaining = (held.len() - 512) as u64;
            let total = *data_len + remaining;
            if footer.disk_type != DiskType::Fixed || footer.current_size != total {
                return Err(VhdError::SizeMismatch {
                    context: "fixed VHD data before the footer",
                    declared: footer.current_size,
                    actual: total,
                }
                .into());
            }
            let offset = *data_len;
            let data = Bytes::from(held[..held.len() - 512].to_vec());
            held.clear();
            *data_len = total;
            self.footer = Some(footer);
            self.finished = true;
            if remaining == 0 {
                return Ok(None);
            }
            return Ok(Some(VhdExtent { offset, data }));
        }
        if held.len() <= 512 {
            return Box::pin(self.next_fixed()).await;
        }
        let give = held.len() - 512;
        let data = Bytes::from(held.drain(..give).collect::<Vec<u8>>());
        let offset = *data_len;
        *data_len += give as u64;
        Ok(Some(VhdExtent { offset, data }))
    }
}
