//! The NBD wire format (fixed newstyle handshake, simple replies), sans IO: constants, the
//! option and command encodings, and the reply headers' decoding.

/// `NBDMAGIC`, the first 8 bytes a server sends.
pub(crate) const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: newstyle negotiation, and the prefix of every option request.
pub(crate) const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Magic of an option reply.
pub(crate) const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Magic of a transmission request.
pub(crate) const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of a simple reply.
pub(crate) const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

/// Server handshake flag: fixed newstyle.
pub(crate) const FLAG_FIXED_NEWSTYLE: u16 = 1;
/// Server handshake flag: the client may skip the 124 zero bytes.
pub(crate) const FLAG_NO_ZEROES: u16 = 2;
/// Client flag: fixed newstyle.
pub(crate) const CLIENT_FIXED_NEWSTYLE: u32 = 1;
/// Client flag: no zeroes.
pub(crate) const CLIENT_NO_ZEROES: u32 = 2;

/// `NBD_OPT_STARTTLS`.
pub(crate) const OPT_STARTTLS: u32 = 5;
/// `NBD_OPT_GO`.
pub(crate) const OPT_GO: u32 = 7;

/// `NBD_REP_ACK`.
pub(crate) const REP_ACK: u32 = 1;
/// `NBD_REP_INFO`.
pub(crate) const REP_INFO: u32 = 3;
/// Replies with this bit set are errors.
pub(crate) const REP_ERROR_BIT: u32 = 1 << 31;

/// `NBD_INFO_EXPORT`: size and transmission flags.
pub(crate) const INFO_EXPORT: u16 = 0;
/// `NBD_INFO_BLOCK_SIZE`: minimum, preferred and maximum block sizes.
pub(crate) const INFO_BLOCK_SIZE: u16 = 3;

/// `NBD_CMD_READ`.
pub(crate) const CMD_READ: u16 = 0;
/// `NBD_CMD_DISC`.
pub(crate) const CMD_DISC: u16 = 2;

/// Transmission flag: the export is read-only.
pub(crate) const TRANSMISSION_READ_ONLY: u16 = 1 << 1;

/// The name of an option error reply (`NBD_REP_ERR_*`).
pub(crate) fn reply_error_name(reply: u32) -> &'static str {
    match reply & !REP_ERROR_BIT {
        1 => "NBD_REP_ERR_UNSUP",
        2 => "NBD_REP_ERR_POLICY",
        3 => "NBD_REP_ERR_INVALID",
        4 => "NBD_REP_ERR_PLATFORM",
        5 => "NBD_REP_ERR_TLS_REQD",
        6 => "NBD_REP_ERR_UNKNOWN",
        7 => "NBD_REP_ERR_SHUTDOWN",
        8 => "NBD_REP_ERR_BLOCK_SIZE_REQD",
        9 => "NBD_REP_ERR_TOO_BIG",
        _ => "NBD_REP_ERR_(unknown)",
    }
}

/// The name of a transmission error (`errno` values the protocol names).
pub(crate) fn errno_name(error: u32) -> &'static str {
    match error {
        1 => "EPERM",
        5 => "EIO",
        12 => "ENOMEM",
        22 => "EINVAL",
        28 => "ENOSPC",
        75 => "EOVERFLOW",
        95 => "ENOTSUP",
        108 => "ESHUTDOWN",
        _ => "error",
    }
}

/// An option request: `IHAVEOPT`, the option, the length, the data.
pub(crate) fn option_request(option: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + data.len());
    out.extend_from_slice(&IHAVEOPT.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of `NBD_OPT_GO` for `name`, asking for the block-size information.
pub(crate) fn go_data(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + name.len());
    out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&1_u16.to_be_bytes());
    out.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    out
}

/// A transmission request (28 bytes).
pub(crate) fn request(command: u16, handle: u64, offset: u64, length: u32) -> [u8; 28] {
    let mut out = [0_u8; 28];
    out[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    // command flags: none
    out[6..8].copy_from_slice(&command.to_be_bytes());
    out[8..16].copy_from_slice(&handle.to_be_bytes());
    out[16..24].copy_from_slice(&offset.to_be_bytes());
    out[24..28].copy_from_slice(&length.to_be_bytes());
    out
}

/// An option reply's header: (option, reply type, length), or the magic found instead.
pub(crate) fn option_reply_header(bytes: &[u8; 20]) -> Result<(u32, u32, u32), u64> {
    let magic = u64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes"));
    if magic != OPTION_REPLY_MAGIC {
        return Err(magic);
    }
    Ok((
        u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes")),
        u32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes")),
        u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes")),
    ))
}

/// A simple reply's header: (error, handle), or the magic found instead.
pub(crate) fn simple_reply_header(bytes: &[u8; 16]) -> Result<(u32, u64), u32> {
    let magic = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if magic != SIMPLE_REPLY_MAGIC {
        return Err(magic);
    }
    Ok((
        u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes")),
        u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_request_is_laid_out_as_the_protocol_says() {
        let bytes = request(CMD_READ, 7, 1 << 20, 65536);
        assert_eq!(&bytes[0..4], &[0x25, 0x60, 0x95, 0x13]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(u64::from_be_bytes(bytes[8..16].try_into().unwrap()), 7);
        assert_eq!(
            u64::from_be_bytes(bytes[16..24].try_into().unwrap()),
            1 << 20
        );
        assert_eq!(u32::from_be_bytes(bytes[24..28].try_into().unwrap()), 65536);
    }

    #[test]
    fn go_asks_for_the_block_size() {
        let data = go_data("/vdi?session_id=x");
        assert_eq!(u32::from_be_bytes(data[0..4].try_into().unwrap()), 17);
        assert_eq!(&data[data.len() - 4..], &[0, 1, 0, 3]);
        let option = option_request(OPT_GO, &data);
        assert_eq!(&option[0..8], b"IHAVEOPT");
    }

    #[test]
    fn reply_headers_check_their_magic() {
        let mut header = [0_u8; 16];
        header[0..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        header[8..16].copy_from_slice(&9_u64.to_be_bytes());
        assert_eq!(simple_reply_header(&header), Ok((0, 9)));
        header[0] = 0;
        assert!(simple_reply_header(&header).is_err());
        assert_eq!(reply_error_name(REP_ERROR_BIT | 5), "NBD_REP_ERR_TLS_REQD");
    }
}
