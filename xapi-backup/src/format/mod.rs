//! Sans-IO streaming codecs for the formats XAPI moves disks and VMs in.
//!
//! - [`xva`]: the VM export format (tar of `ova.xml` + checksummed 1 MiB chunks);
//! - [`raw_tar`]: `export_raw_vdi?format=tar`, the same chunk scheme under `vdi/`;
//! - [`chunked`]: the `import_raw_vdi?chunked` upload body;
//! - [`vhd`]: fixed, dynamic and differencing VHD images;
//! - [`tar`], [`compression`]: the layers under them;
//! - [`read_ahead`]: a local file read on a thread of its own, ahead of the codecs;
//! - `recycle`: chunk buffers used again rather than freed.

pub mod chunked;
pub mod compression;
pub mod raw_tar;
pub mod read_ahead;
pub(crate) mod recycle;
pub mod tar;
pub mod vhd;
pub mod xva;

pub use xva::ova_xml;
