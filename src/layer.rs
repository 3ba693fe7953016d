//! Normalises the build times in a container image layer tar, so that rebuilding the same commit gives the same
//! layer bytes and therefore the same diff ID.
//!
//! Docker's legacy builder stamps the time of the build into the entries it adds to a layer. [`clamp`] rewrites a
//! layer so that every time newer than a given epoch (`SOURCE_DATE_EPOCH`) becomes the epoch, and older times stay
//! as they are. The tar stream is parsed by hand, one 512-byte header at a time, and file contents are streamed
//! through in chunks, so a layer of any size is processed in constant memory.
//!
//! The invariant: the output differs from the input only in clamped time fields (header mtimes, the atime and ctime
//! fields of GNU headers, and PAX `mtime`, `atime` and `ctime` records) and in what follows from them: the header
//! checksums, the length prefixes of the rewritten PAX records, the size fields of the extended headers that hold
//! them, and those headers' zero padding. Entry order, names, modes, owners, contents, padding, whiteouts, links,
//! the end-of-archive marker and whatever follows it are copied byte for byte. A layer with nothing newer than the
//! epoch comes out byte-identical, and `changed` is then 0.
//!
//! Docker reads layers with Go's `archive/tar`, so where the formats leave room for interpretation this module does
//! what that reader does: extended headers are capped at 1 MiB, the data of hard links, symlinks, devices,
//! directories, FIFOs and old-style directories ('\0' entries named with a trailing slash) is taken to be empty
//! whatever their size field says, a GNU long name wins over a PAX `path`, and a PAX global header ('g') is reported
//! as an entry of its own rather than merged into the entries after it.
//! It is stricter than that reader in one way: the layer must end with the two zero blocks of the end-of-archive
//! marker. Go and GNU tar accept a stream that stops at an entry boundary, but every layer docker writes has the
//! marker, and accepting its absence would let a layer cut short between two entries pass as a smaller valid one.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::hash::hex;

const BLOCK: usize = 512;
const ZEROS: [u8; BLOCK] = [0; BLOCK];

/// The input is read in chunks of this size, which is also the most file data held in memory at once.
const CHUNK: usize = 1 << 20;

/// Extended header data (PAX records, GNU long names) is held in memory, so it is capped, at the same size as Go's
/// `archive/tar` caps it: a layer with bigger ones could not have been read by docker anyway.
const MAX_EXTENSION: u64 = 1 << 20;

const NAME: Range<usize> = 0..100;
const MODE: Range<usize> = 100..108;
const UID: Range<usize> = 108..116;
const GID: Range<usize> = 116..124;
const SIZE: Range<usize> = 124..136;
const MTIME: Range<usize> = 136..148;
const CHKSUM: Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: Range<usize> = 157..257;
const MAGIC: Range<usize> = 257..263;
const MAGIC_AND_VERSION: Range<usize> = 257..265;
const PREFIX: Range<usize> = 345..500;
const STAR_PREFIX: Range<usize> = 345..476;
const STAR_TRAILER: Range<usize> = 508..512;
const GNU_ATIME: Range<usize> = 345..357;
const GNU_CTIME: Range<usize> = 357..369;
const GNU_IS_EXTENDED: usize = 482;
const SPARSE_BLOCK_IS_EXTENDED: usize = 504;

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clamped {
    /// `sha256:<64 lowercase hex>` of the bytes written.
    pub diff_id: String,
    /// Number of bytes written.
    pub size: u64,
    /// Entries as Go's `archive/tar` returns them: 'x', 'L' and 'K' extension headers count as part of the entry
    /// they describe, and a PAX global header ('g') counts as one entry.
    pub entries: u64,
    /// Entries any of whose times (in their own header or in the extension headers before it) were clamped.
    pub changed: u64,
}

/// Streams a layer tar from `input` to `output`, clamping mtimes newer than `epoch`. Never holds more than one entry
/// header (plus PAX extended header data) in memory; file contents are copied through in chunks of 1 MiB. Hashes
/// what it writes (sha256) as it goes.
///
/// Fails with `InvalidData` on a header with a wrong checksum or a malformed field, on a malformed PAX record, and
/// on a layer that ends without the end-of-archive marker; with `UnexpectedEof` when the stream stops inside a
/// header, inside an entry's data, or inside the marker. What was written before the error is incomplete.
// Clamping is BuildKit's `rewrite-timestamp` semantics; normalisation sets instead (see `Mode`), and
// the clamp stays as the reference the format tests are written against.
#[cfg_attr(not(test), allow(dead_code))]
pub fn clamp(input: impl Read, output: impl Write, epoch: i64) -> io::Result<Clamped> {
    rewrite_times(input, output, Policy { epoch, mode: Mode::Clamp })
}

/// How [`rewrite_times`] treats a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Times newer than the epoch become the epoch; older ones stay (BuildKit's `rewrite-timestamp`).
    #[cfg_attr(not(test), allow(dead_code))]
    Clamp,
    /// Every time becomes the epoch. A layer the builder took from its cache keeps the times of the
    /// checkout it was first built from, which may be older than a later commit's epoch; clamping
    /// would keep those, and a cold rebuild of the same commit would then differ.
    Set,
}

/// A source date and what to do with the times it governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub epoch: i64,
    pub mode: Mode,
}

impl Policy {
    /// Whether a time of `seconds` (with a fraction or not) is rewritten to the epoch.
    fn replaces(self, seconds: i64, fraction: bool) -> bool {
        match self.mode {
            Mode::Clamp => seconds > self.epoch || (seconds == self.epoch && fraction),
            Mode::Set => seconds != self.epoch || fraction,
        }
    }
}

/// Streams a layer tar from `input` to `output`, rewriting its times as `policy` says; the rest is as
/// [`clamp`] describes.
pub fn rewrite_times(input: impl Read, output: impl Write, policy: Policy) -> io::Result<Clamped> {
    let mut input = BufReader::with_capacity(CHUNK, input);
    // Headers are written 512 bytes at a time, so the output is buffered to keep that from costing a system call
    // each; file data comes in chunks bigger than the buffer and goes straight through.
    let mut output = Hashing { inner: BufWriter::with_capacity(64 << 10, output), hasher: Sha256::new(), size: 0 };
    let counts = walk(&mut input, &mut output, Some(policy), None)?;
    output.flush()?;
    Ok(Clamped {
        diff_id: format!("sha256:{}", hex(&output.hasher.finalize())),
        size: output.size,
        entries: counts.entries,
        changed: counts.changed,
    })
}

/// One entry, for explaining why two layers differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// The typeflag: '0' file, '1' hard link, '2' symlink, '5' directory, and so on ('0' for '\0').
    pub kind: char,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the Unix epoch, rounded down when a PAX `mtime` has a fraction.
    pub mtime: i64,
    /// The link target, empty if none.
    pub link: String,
    /// Hex sha256 of the contents of a regular file, `None` for every other kind.
    pub sha256: Option<String>,
}

/// Lists the entries of a layer tar in order, with effective path/link/size/mtime after applying PAX ('x') and GNU
/// long name/link ('L'/'K') records; hashes regular file contents while streaming. PAX global headers ('g') are
/// listed as entries of kind 'g' and are not applied to the entries after them, as in Go's `archive/tar`.
///
/// Fails on the same malformed or truncated layers as [`clamp`].
pub fn entries(input: impl Read) -> io::Result<Vec<Entry>> {
    let mut input = BufReader::with_capacity(CHUNK, input);
    let mut list = Vec::new();
    walk(&mut input, &mut io::sink(), None, Some(&mut |entry| list.push(entry)))?;
    Ok(list)
}

struct Counts {
    entries: u64,
    changed: u64,
}

/// What the extension headers before an entry said about it.
#[derive(Default)]
struct Pending {
    pax_path: Option<String>,
    pax_link: Option<String>,
    gnu_path: Option<String>,
    gnu_link: Option<String>,
    size: Option<u64>,
    mtime: Option<i64>,
    uid: Option<u64>,
    gid: Option<u64>,
    /// Whether a time in one of these extension headers was clamped.
    changed: bool,
    /// Offset of the first of these extension headers, for the error when no entry follows them.
    offset: Option<u64>,
}

/// Reads the layer header by header, writes every byte to `out` (clamped when `epoch` is given, verbatim
/// otherwise) and hands each entry to `on_entry`; regular file contents are only hashed when there is one.
fn walk(
    input: &mut impl BufRead,
    out: &mut impl Write,
    policy: Option<Policy>,
    mut on_entry: Option<&mut dyn FnMut(Entry)>,
) -> io::Result<Counts> {
    let mut counts = Counts { entries: 0, changed: 0 };
    let mut pending = Pending::default();
    let mut offset = 0u64;
    loop {
        let mut header = [0u8; BLOCK];
        match read_full(input, &mut header)? {
            0 => return Err(invalid(format!("layer tar ends at offset {offset} without the end-of-archive marker"))),
            BLOCK => {}
            _ => return Err(truncated(format!("layer tar is truncated inside the header at offset {offset}"))),
        }
        if header == ZEROS {
            if let Some(at) = pending.offset {
                return Err(invalid(format!("extended header at offset {at} is not followed by an entry")));
            }
            end_of_archive(input, out, offset)?;
            return Ok(counts);
        }
        verify_checksum(&header, offset)?;
        let typeflag = header[TYPEFLAG];
        let size = u64::try_from(number(&header, SIZE, "size", offset)?)
            .map_err(|_| invalid(format!("header at offset {offset} has a negative size")))?;
        let mtime = number(&header, MTIME, "mtime", offset)?;
        let mut dirty = policy.is_some_and(|policy| clamp_header_times(&mut header, mtime, policy));

        match typeflag {
            b'x' | b'g' => {
                let data = read_extension(input, size, offset)?;
                let records = pax_records(&data[..size as usize], offset)?;
                let rewritten = match policy {
                    Some(policy) => clamp_pax_records(&records, policy, offset)?,
                    None => None,
                };
                if let Some(new) = &rewritten {
                    // An unchanged length keeps the size field byte for byte, whatever style it was written in.
                    if new.len() as u64 != size {
                        header[SIZE].copy_from_slice(format!("{:011o}\0", new.len()).as_bytes());
                    }
                    dirty = true;
                }
                if dirty {
                    set_checksum(&mut header);
                }
                out.write_all(&header)?;
                match &rewritten {
                    Some(new) => {
                        out.write_all(new)?;
                        out.write_all(&ZEROS[..padding(new.len() as u64) as usize])?;
                    }
                    None => out.write_all(&data)?,
                }
                if typeflag == b'x' {
                    apply_pax(&mut pending, &records, offset)?;
                    pending.changed |= dirty;
                    pending.offset.get_or_insert(offset);
                } else {
                    counts.entries += 1;
                    counts.changed += u64::from(dirty);
                    if let Some(on_entry) = on_entry.as_mut() {
                        let (mode, uid, gid) = owner_and_mode(&header, offset)?;
                        on_entry(Entry {
                            path: header_path(&header),
                            kind: 'g',
                            size,
                            mode,
                            uid,
                            gid,
                            mtime,
                            link: String::new(),
                            sha256: None,
                        });
                    }
                }
                offset += (BLOCK + data.len()) as u64;
            }
            b'L' | b'K' => {
                let data = read_extension(input, size, offset)?;
                if dirty {
                    set_checksum(&mut header);
                }
                out.write_all(&header)?;
                out.write_all(&data)?;
                let value = lossy(until_nul(&data[..size as usize]));
                if typeflag == b'L' {
                    pending.gnu_path = Some(value);
                } else {
                    pending.gnu_link = Some(value);
                }
                pending.changed |= dirty;
                pending.offset.get_or_insert(offset);
                offset += (BLOCK + data.len()) as u64;
            }
            _ => {
                // Go lets a GNU long name win over a PAX path (it merges the PAX records first), and so does this.
                let path = pending.gnu_path.take().or(pending.pax_path.take()).unwrap_or_else(|| header_path(&header));
                let size = pending.size.unwrap_or(size);
                // Old archives mark directories with a trailing slash on a '\0' entry, and Go reads such an entry
                // as a directory, without data, whatever its size field says.
                let legacy_dir = typeflag == 0 && path.ends_with('/');
                let header_only = matches!(typeflag, b'1'..=b'6') || legacy_dir;
                let data_len = if header_only { 0 } else { size };
                if dirty {
                    set_checksum(&mut header);
                }
                out.write_all(&header)?;
                let mut consumed = BLOCK as u64;
                if typeflag == b'S' && is_gnu(&header) && header[GNU_IS_EXTENDED] != 0 {
                    consumed += copy_sparse_map(input, out, &path, offset)?;
                }
                let regular = matches!(typeflag, b'0' | b'\0' | b'7') && !legacy_dir;
                let mut hasher = (on_entry.is_some() && regular).then(Sha256::new);
                let place = || format!("the data of '{path}' (header at offset {offset})");
                copy_exact(input, out, data_len, hasher.as_mut(), &place)?;
                copy_exact(input, out, padding(data_len), None, &place)?;
                consumed += data_len + padding(data_len);

                counts.entries += 1;
                counts.changed += u64::from(dirty || pending.changed);
                if let Some(on_entry) = on_entry.as_mut() {
                    let (mode, uid, gid) = owner_and_mode(&header, offset)?;
                    on_entry(Entry {
                        link: pending
                            .gnu_link
                            .take()
                            .or(pending.pax_link.take())
                            .unwrap_or_else(|| lossy(until_nul(&header[LINKNAME]))),
                        path,
                        kind: match typeflag {
                            0 if legacy_dir => '5',
                            0 => '0',
                            _ => char::from(typeflag),
                        },
                        size,
                        mode,
                        uid: pending.uid.unwrap_or(uid),
                        gid: pending.gid.unwrap_or(gid),
                        mtime: pending.mtime.unwrap_or(mtime),
                        sha256: hasher.map(|hasher| hex(&hasher.finalize())),
                    });
                }
                pending = Pending::default();
                offset += consumed;
            }
        }
    }
}

/// Handles the first zero block: the second must follow, and everything after the two (usually zero padding up to
/// a 10240-byte record) is copied verbatim.
fn end_of_archive(input: &mut impl BufRead, out: &mut impl Write, offset: u64) -> io::Result<()> {
    let mut second = [0u8; BLOCK];
    if read_full(input, &mut second)? < BLOCK {
        let at = offset + BLOCK as u64;
        return Err(truncated(format!("layer tar is truncated inside the end-of-archive marker at offset {at}")));
    }
    // Go's reader rejects a lone zero block followed by more data too, so no layer docker reads looks like this.
    if second != ZEROS {
        return Err(invalid(format!("layer tar has a lone zero block at offset {offset} followed by more data")));
    }
    out.write_all(&ZEROS)?;
    out.write_all(&ZEROS)?;
    loop {
        let n = {
            let buf = fill(input)?;
            if buf.is_empty() {
                return Ok(());
            }
            out.write_all(buf)?;
            buf.len()
        };
        input.consume(n);
    }
}

/// Clamps the header's own time fields; returns whether any changed (the checksum is then stale).
fn clamp_header_times(header: &mut [u8; BLOCK], mtime: i64, policy: Policy) -> bool {
    let mut changed = false;
    if policy.replaces(mtime, false) {
        put_time(&mut header[MTIME], policy.epoch);
        changed = true;
    }
    if is_gnu(header) {
        for field in [GNU_ATIME, GNU_CTIME] {
            // Unused GNU atime/ctime fields are NUL-filled and must stay so; Go only reads them when the first byte
            // is not NUL, and a field that does not parse as a number (old Go wrote a USTAR prefix there) is left
            // alone rather than rejected.
            if header[field.start] != 0
                && let Some(time) = parse_numeric(&header[field.clone()])
                && policy.replaces(time, false)
            {
                put_time(&mut header[field], policy.epoch);
                changed = true;
            }
        }
    }
    changed
}

/// Writes a time into a 12-byte numeric field the way docker's writer does: 11 octal digits and a NUL when it fits,
/// GNU base-256 otherwise (negative times and times from the year 2242 on).
fn put_time(field: &mut [u8], time: i64) {
    if (0..8i64.pow(11)).contains(&time) {
        field.copy_from_slice(format!("{time:011o}\0").as_bytes());
    } else {
        let mut bytes = [if time < 0 { 0xff } else { 0 }; 12];
        bytes[4..].copy_from_slice(&time.to_be_bytes());
        bytes[0] |= 0x80;
        field.copy_from_slice(&bytes);
    }
}

/// One `<len> <key>=<value>\n` record of a PAX extended header, with the bytes it was read from.
struct Record<'a> {
    raw: &'a [u8],
    key: &'a [u8],
    value: &'a [u8],
}

/// Splits PAX extended header data into records, as strictly as Go does: the records must fill the data exactly.
fn pax_records(data: &[u8], offset: u64) -> io::Result<Vec<Record<'_>>> {
    let malformed = || invalid(format!("extended header at offset {offset} has a malformed record"));
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(malformed)?;
        let len = parse_decimal(&rest[..space]).and_then(|len| usize::try_from(len).ok()).ok_or_else(malformed)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(malformed());
        }
        let body = &rest[space + 1..len - 1];
        let equals = body.iter().position(|&b| b == b'=').filter(|&at| at > 0).ok_or_else(malformed)?;
        records.push(Record { raw: &rest[..len], key: &body[..equals], value: &body[equals + 1..] });
        rest = &rest[len..];
    }
    Ok(records)
}

/// Rewrites the time records newer than the epoch; returns the new data, or `None` when no record changed. Records
/// that do not change keep their bytes, including any non-canonical length prefix.
fn clamp_pax_records(records: &[Record], policy: Policy, offset: u64) -> io::Result<Option<Vec<u8>>> {
    let epoch_text = policy.epoch.to_string();
    let mut data = Vec::new();
    let mut changed = false;
    for record in records {
        if matches!(record.key, b"mtime" | b"atime" | b"ctime") {
            let (seconds, fraction) = pax_time(record, offset)?;
            if policy.replaces(seconds, fraction) {
                data.extend_from_slice(&pax_record(record.key, epoch_text.as_bytes()));
                changed = true;
                continue;
            }
        }
        data.extend_from_slice(record.raw);
    }
    Ok(changed.then_some(data))
}

/// Builds a PAX record. Its length prefix counts its own digits, so it is found as the fixed point of
/// `len = digits(len) + rest`, which can take one step more than the obvious guess (9 bytes of rest give 11, not 10).
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + decimal_digits(rest);
    while rest + decimal_digits(len) != len {
        len = rest + decimal_digits(len);
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    debug_assert_eq!(record.len(), len);
    record
}

fn decimal_digits(n: usize) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

/// Parses a PAX time (`[-]seconds[.fraction]`) into whole seconds rounded down and whether a fraction remains,
/// which is all that comparing it with an integer epoch needs, at any precision.
fn pax_time(record: &Record, offset: u64) -> io::Result<(i64, bool)> {
    let bad = || {
        let (key, value) = (lossy(record.key), lossy(record.value));
        invalid(format!("extended header at offset {offset} has an invalid {key} '{value}'"))
    };
    let (negative, unsigned) = match record.value.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, record.value),
    };
    let (whole, fraction) = match unsigned.iter().position(|&b| b == b'.') {
        Some(dot) => (&unsigned[..dot], &unsigned[dot + 1..]),
        None => (unsigned, &[][..]),
    };
    let whole = parse_decimal(whole).and_then(|n| i64::try_from(n).ok()).ok_or_else(bad)?;
    if !fraction.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let fraction = fraction.iter().any(|&b| b != b'0');
    Ok(match (negative, fraction) {
        (false, _) => (whole, fraction),
        (true, false) => (-whole, false),
        // -1.5 lies between -2 and -1, so it rounds down to -2 with a fraction left over.
        (true, true) => (-whole - 1, true),
    })
}

/// Takes the records of a PAX 'x' header that change how the next entry is read or reported.
fn apply_pax(pending: &mut Pending, records: &[Record], offset: u64) -> io::Result<()> {
    for record in records {
        let number = || {
            parse_decimal(record.value).ok_or_else(|| {
                let (key, value) = (lossy(record.key), lossy(record.value));
                invalid(format!("extended header at offset {offset} has an invalid {key} '{value}'"))
            })
        };
        match record.key {
            b"path" => pending.pax_path = Some(lossy(record.value)),
            b"linkpath" => pending.pax_link = Some(lossy(record.value)),
            b"size" => pending.size = Some(number()?),
            b"uid" => pending.uid = Some(number()?),
            b"gid" => pending.gid = Some(number()?),
            b"mtime" => pending.mtime = Some(pax_time(record, offset)?.0),
            _ => {}
        }
    }
    Ok(())
}

/// Reads the data of an extension header ('x', 'g', 'L', 'K') with its padding.
fn read_extension(input: &mut impl BufRead, size: u64, offset: u64) -> io::Result<Vec<u8>> {
    if size > MAX_EXTENSION {
        return Err(invalid(format!(
            "extended header at offset {offset} holds {size} bytes, more than the {MAX_EXTENSION} accepted"
        )));
    }
    let mut data = vec![0u8; (size + padding(size)) as usize];
    if read_full(input, &mut data)? < data.len() {
        return Err(truncated(format!("layer tar is truncated inside the extended header at offset {offset}")));
    }
    Ok(data)
}

/// Copies the extra blocks of an old GNU sparse header, which sit between the header and the data for as long as
/// the "is extended" byte is set; returns how many bytes they took.
fn copy_sparse_map(input: &mut impl BufRead, out: &mut impl Write, path: &str, offset: u64) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let mut block = [0u8; BLOCK];
        if read_full(input, &mut block)? < BLOCK {
            return Err(truncated(format!(
                "layer tar is truncated inside the sparse map of '{path}' (header at offset {offset})"
            )));
        }
        out.write_all(&block)?;
        copied += BLOCK as u64;
        if block[SPARSE_BLOCK_IS_EXTENDED] == 0 {
            return Ok(copied);
        }
    }
}

/// Copies `len` bytes straight from the reader's buffer, feeding them to `hasher` too when there is one.
fn copy_exact(
    input: &mut impl BufRead,
    out: &mut impl Write,
    mut len: u64,
    mut hasher: Option<&mut Sha256>,
    place: &dyn Fn() -> String,
) -> io::Result<()> {
    while len > 0 {
        let n = {
            let buf = fill(input)?;
            if buf.is_empty() {
                return Err(truncated(format!("layer tar is truncated inside {}", place())));
            }
            let chunk = &buf[..buf.len().min(usize::try_from(len).unwrap_or(usize::MAX))];
            out.write_all(chunk)?;
            if let Some(hasher) = hasher.as_deref_mut() {
                hasher.update(chunk);
            }
            chunk.len()
        };
        input.consume(n);
        len -= n as u64;
    }
    Ok(())
}

fn fill(input: &mut impl BufRead) -> io::Result<&[u8]> {
    // A loop that returns the buffer of a successful call and retries an interrupted one does not pass the borrow
    // checker, so an interruption is retried once by calling again; when the first call succeeded, the second
    // returns the same buffered bytes without reading.
    if let Err(error) = input.fill_buf()
        && error.kind() != io::ErrorKind::Interrupted
    {
        return Err(error);
    }
    input.fill_buf()
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn verify_checksum(header: &[u8; BLOCK], offset: u64) -> io::Result<()> {
    let (unsigned, signed) = checksums(header);
    // Some historic writers summed signed bytes; Go and GNU tar accept either sum, and so does this.
    if parse_numeric(&header[CHKSUM]).is_some_and(|stored| stored == unsigned || stored == signed) {
        return Ok(());
    }
    let name = lossy(until_nul(&header[NAME]));
    Err(invalid(format!("header at offset {offset} has a wrong checksum (entry '{name}')")))
}

/// The unsigned and signed sums of the header bytes, with the checksum field counted as eight spaces.
fn checksums(header: &[u8; BLOCK]) -> (i64, i64) {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &byte) in header.iter().enumerate() {
        let byte = if CHKSUM.contains(&i) { b' ' } else { byte };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    (unsigned, signed)
}

fn set_checksum(header: &mut [u8; BLOCK]) {
    let (sum, _) = checksums(header);
    header[CHKSUM].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn number(header: &[u8; BLOCK], field: Range<usize>, what: &str, offset: u64) -> io::Result<i64> {
    parse_numeric(&header[field])
        .ok_or_else(|| invalid(format!("header at offset {offset} has an invalid {what} field")))
}

fn owner_and_mode(header: &[u8; BLOCK], offset: u64) -> io::Result<(u32, u64, u64)> {
    let mode = u32::try_from(number(header, MODE, "mode", offset)?);
    let uid = u64::try_from(number(header, UID, "uid", offset)?);
    let gid = u64::try_from(number(header, GID, "gid", offset)?);
    match (mode, uid, gid) {
        (Ok(mode), Ok(uid), Ok(gid)) => Ok((mode, uid, gid)),
        _ => Err(invalid(format!("header at offset {offset} has a mode, uid or gid out of range"))),
    }
}

/// Parses a numeric header field: octal ASCII padded with spaces or NULs, or GNU base-256 when the high bit of the
/// first byte is set (0x80 positive, 0xff negative, two's complement). An empty field is 0, as Go reads it.
fn parse_numeric(field: &[u8]) -> Option<i64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        // Inverting a negative number's bytes gives its complement, which is parsed as an unsigned value.
        let invert = if field[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut value = 0u64;
        for (i, &byte) in field.iter().enumerate() {
            let byte = if i == 0 { (byte ^ invert) & 0x7f } else { byte ^ invert };
            if value >> 56 != 0 {
                return None;
            }
            value = value << 8 | u64::from(byte);
        }
        let value = i64::try_from(value).ok()?;
        return Some(if invert == 0xff { !value } else { value });
    }
    let start = field.iter().position(|&b| b != b' ' && b != 0).unwrap_or(field.len());
    let digits = until_nul(&field[start..]);
    let digits = &digits[..digits.iter().rposition(|&b| b != b' ').map_or(0, |end| end + 1)];
    let mut value = 0i64;
    for &digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(i64::from(digit - b'0'))?;
    }
    Some(value)
}

/// Parses a non-empty run of ASCII decimal digits.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The path stored in the header itself: USTAR (and star) headers put the leading directories in the prefix field,
/// GNU headers use that space for other things and keep long names in 'L' records instead.
fn header_path(header: &[u8; BLOCK]) -> String {
    let name = until_nul(&header[NAME]);
    if header[MAGIC] == *b"ustar\0" {
        let star = header[STAR_TRAILER] == *b"tar\0";
        let prefix = until_nul(&header[if star { STAR_PREFIX } else { PREFIX }]);
        if !prefix.is_empty() {
            return lossy(&[prefix, b"/", name].concat());
        }
    }
    lossy(name)
}

fn is_gnu(header: &[u8; BLOCK]) -> bool {
    header[MAGIC_AND_VERSION] == *b"ustar  \0"
}

fn padding(len: u64) -> u64 {
    (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

/// Names are bytes; they are shown as UTF-8, with anything else replaced, since entries only serve explanations.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn truncated(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message)
}

/// Passes writes through while hashing and counting them.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::rc::Rc;
    use std::time::{Duration, UNIX_EPOCH};

    const EPOCH: i64 = 1_600_000_000;
    const NEW: i64 = 1_700_000_000;
    const OLD: i64 = 1_000_000_000;
    /// How GNU tar shows EPOCH and OLD with `--full-time` in UTC.
    const EPOCH_SHOWN: &str = "2020-09-13 12:26:40";
    const OLD_SHOWN: &str = "2001-09-09 01:46:40";

    #[derive(Clone, Copy, PartialEq)]
    enum Format {
        Ustar,
        Gnu,
    }

    /// What goes into one hand-built header.
    #[derive(Clone)]
    struct Spec {
        name: String,
        prefix: String,
        typeflag: u8,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: i64,
        /// The size field, when it is not the length of the data.
        size: Option<u64>,
        link: String,
        format: Format,
    }

    fn spec(name: &str, typeflag: u8, mtime: i64) -> Spec {
        Spec {
            name: name.into(),
            prefix: String::new(),
            typeflag,
            mode: if typeflag == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime,
            size: None,
            link: String::new(),
            format: Format::Ustar,
        }
    }

    fn put(header: &mut [u8], at: usize, bytes: &[u8]) {
        header[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Writes a header the way Go's archive/tar does, with code of its own rather than the module's helpers, so
    /// that the expected archives in these tests are an independent statement of the format.
    fn header(spec: &Spec, size: u64) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        put(&mut h, 0, spec.name.as_bytes());
        put(&mut h, 100, format!("{:07o}\0", spec.mode).as_bytes());
        put(&mut h, 108, format!("{:07o}\0", spec.uid).as_bytes());
        put(&mut h, 116, format!("{:07o}\0", spec.gid).as_bytes());
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
        if (0..8i64.pow(11)).contains(&spec.mtime) {
            put(&mut h, 136, format!("{:011o}\0", spec.mtime).as_bytes());
        } else {
            let fill = if spec.mtime < 0 { 0xff } else { 0x00 };
            put(&mut h, 136, &[0x80 | fill, fill, fill, fill]);
            put(&mut h, 140, &spec.mtime.to_be_bytes());
        }
        h[156] = spec.typeflag;
        put(&mut h, 157, spec.link.as_bytes());
        match spec.format {
            Format::Ustar => {
                put(&mut h, 257, b"ustar\x0000");
                put(&mut h, 345, spec.prefix.as_bytes());
            }
            Format::Gnu => put(&mut h, 257, b"ustar  \0"),
        }
        put(&mut h, 265, b"root");
        put(&mut h, 297, b"root");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * u32::from(b' ');
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Appends an entry with its data and padding; returns the offset of its header.
    fn add(tar: &mut Vec<u8>, spec: &Spec, data: &[u8]) -> usize {
        let at = tar.len();
        tar.extend_from_slice(&header(spec, spec.size.unwrap_or(data.len() as u64)));
        tar.extend_from_slice(data);
        tar.resize(tar.len().next_multiple_of(BLOCK), 0);
        at
    }

    fn end(tar: &mut Vec<u8>) {
        tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    }

    /// PAX records, each length found by search rather than by the module's formula.
    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (key, value) in records {
            let record = (1..)
                .map(|len| format!("{len} {key}={value}\n"))
                .find(|r| r.len() == r.split(' ').next().unwrap().parse::<usize>().unwrap())
                .unwrap();
            data.extend_from_slice(record.as_bytes());
        }
        data
    }

    fn run(input: &[u8], epoch: i64) -> (Vec<u8>, Clamped) {
        let mut out = Vec::new();
        let clamped = clamp(input, &mut out, epoch).unwrap();
        (out, clamped)
    }

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Offsets at which two archives of the same length differ.
    fn diffs(a: &[u8], b: &[u8]) -> Vec<usize> {
        assert_eq!(a.len(), b.len());
        (0..a.len()).filter(|&i| a[i] != b[i]).collect()
    }

    /// Compares archives, reporting the first difference rather than thousands of bytes.
    #[track_caller]
    fn assert_bytes(actual: &[u8], expected: &[u8]) {
        let first = actual.iter().zip(expected).position(|(a, b)| a != b);
        assert!(
            first.is_none() && actual.len() == expected.len(),
            "archives differ at byte {first:?}; lengths {} and {}",
            actual.len(),
            expected.len()
        );
    }

    /// Checks a stored header checksum against an independent sum.
    fn checksum_ok(h: &[u8]) -> bool {
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        h[148..156] == *format!("{sum:06o}\0 ").as_bytes()
    }

    /// Runs GNU tar with `input` on its standard input (fed from a thread, so big archives cannot deadlock).
    fn gnu_tar(args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("tar")
            .args(args)
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("GNU tar is installed");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(output.status.success(), "tar {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    }

    fn listing(tar: &[u8]) -> String {
        String::from_utf8(gnu_tar(&["--full-time", "--numeric-owner", "-tvf", "-"], tar)).unwrap()
    }

    /// The line of a `tar -tv` listing that shows `name`.
    fn line<'a>(listing: &'a str, name: &str) -> &'a str {
        listing
            .lines()
            .find(|l| l.split(' ').any(|word| word == name))
            .unwrap_or_else(|| panic!("{name} missing from {listing}"))
    }

    fn error_of(input: &[u8]) -> io::Error {
        let clamp_error = clamp(input, io::sink(), EPOCH).unwrap_err();
        let entries_error = entries(input).unwrap_err();
        assert_eq!(clamp_error.kind(), entries_error.kind());
        assert_eq!(clamp_error.to_string(), entries_error.to_string());
        clamp_error
    }

    #[test]
    fn ustar_clamps_newer_mtimes_and_keeps_every_other_byte() {
        let mut tar = Vec::new();
        let dir = add(&mut tar, &spec("app/", b'5', NEW), b"");
        let new = add(&mut tar, &spec("app/new.txt", b'0', NEW), b"new contents\n");
        add(&mut tar, &spec("app/old.txt", b'0', OLD), &[7u8; 1000]);
        add(&mut tar, &spec("app/equal.txt", b'0', EPOCH), b"same second");
        let later = add(&mut tar, &spec("app/later.txt", b'0', EPOCH + 1), &[b'x'; 512]);
        end(&mut tar);

        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!((clamped.entries, clamped.changed), (5, 3));
        let clamped_headers = [dir, new, later];
        for at in diffs(&tar, &out) {
            assert!(clamped_headers.iter().any(|h| (h + 136..h + 156).contains(&at)), "byte {at} changed");
        }
        for h in clamped_headers {
            assert_eq!(out[h + 136..h + 148], *format!("{EPOCH:011o}\0").as_bytes());
            assert!(checksum_ok(&out[h..h + BLOCK]));
        }

        let shown = listing(&out);
        assert!(line(&shown, "app/new.txt").contains(EPOCH_SHOWN), "{shown}");
        assert!(line(&shown, "app/later.txt").contains(EPOCH_SHOWN), "{shown}");
        assert!(line(&shown, "app/old.txt").contains(OLD_SHOWN), "{shown}");
    }

    #[test]
    fn clamped_mtime_is_base256_when_octal_cannot_hold_it() {
        // A negative epoch cannot be octal, and neither can one from the year 2242 on.
        for (epoch, mtime, field) in [
            (-5i64, NEW, [&[0xff; 4][..], &(-5i64).to_be_bytes()].concat()),
            (8i64.pow(11), 9_000_000_000, [&[0x80, 0, 0, 0][..], &8i64.pow(11).to_be_bytes()].concat()),
        ] {
            let mut tar = Vec::new();
            let h = add(&mut tar, &spec("f", b'0', mtime), b"x");
            end(&mut tar);
            let (out, clamped) = run(&tar, epoch);
            assert_eq!(clamped.changed, 1);
            assert_eq!(out[h + 136..h + 148], field);
            assert!(checksum_ok(&out[h..h + BLOCK]));
            assert_eq!(entries(&out[..]).unwrap()[0].mtime, epoch);
            listing(&out);
        }
        // An older base-256 time is kept as it is.
        let mut tar = Vec::new();
        add(&mut tar, &spec("f", b'0', -86_400), b"x");
        end(&mut tar);
        assert_bytes(&run(&tar, EPOCH).0, &tar);
        assert_eq!(entries(&tar[..]).unwrap()[0].mtime, -86_400);
    }

    #[test]
    fn pax_times_are_clamped_and_lengths_recomputed() {
        let records = |mtime: &str, ctime: &str| {
            pax(&[("mtime", mtime), ("atime", "1500000000.5"), ("ctime", ctime), ("comment", "kept as it is")])
        };
        let build = |x_mtime, data: &[u8], f_mtime| {
            let mut tar = Vec::new();
            add(&mut tar, &spec("PaxHeaders/f", b'x', x_mtime), data);
            add(&mut tar, &spec("f", b'0', f_mtime), b"contents");
            add(&mut tar, &spec("g", b'0', OLD), b"next entry");
            end(&mut tar);
            tar
        };
        let tar = build(NEW, &records("1700000000.123456789", "1600000000.000000001"), NEW);
        let (out, clamped) = run(&tar, EPOCH);
        let expected = build(EPOCH, &records("1600000000", "1600000000"), EPOCH);
        assert_bytes(&out, &expected);
        assert_eq!((clamped.entries, clamped.changed), (2, 1));
        assert_eq!(entries(&out[..]).unwrap()[0].mtime, EPOCH);
        assert!(line(&listing(&out), "f").contains(EPOCH_SHOWN));
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        assert_eq!(pax_record(b"mtime", b"5"), b"11 mtime=5\n");
        // Rest lengths of 97 and 98 straddle the step from two to three digits, 996 and 997 the next one.
        for (value_len, len) in [(89, 99), (90, 101), (988, 999), (989, 1001)] {
            let record = pax_record(b"mtime", "1".repeat(value_len).as_bytes());
            assert_eq!(record.len(), len);
            assert!(record.starts_with(format!("{len} mtime=").as_bytes()));
        }

        // In an archive: a three-digit record shrinks to two digits, and a one-digit epoch needs the second step.
        let long = format!("1700000000.{}", "1".repeat(90));
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/f", b'x', 1), &pax(&[("mtime", &long), ("atime", "1700000000")]));
        add(&mut tar, &spec("f", b'0', 1), b"contents");
        end(&mut tar);
        assert!(tar[BLOCK..].starts_with(b"112 mtime="));
        let (out, _) = run(&tar, 5);
        let mut expected = Vec::new();
        add(&mut expected, &spec("PaxHeaders/f", b'x', 1), b"11 mtime=5\n11 atime=5\n");
        add(&mut expected, &spec("f", b'0', 1), b"contents");
        end(&mut expected);
        assert_bytes(&out, &expected);
    }

    #[test]
    fn pax_data_crossing_a_block_boundary_changes_the_padding() {
        let build = |header_mtime, mtime: &str, filler: usize| {
            let comment = "c".repeat(filler);
            let data = pax(&[("comment", &comment), ("mtime", mtime)]);
            let mut tar = Vec::new();
            add(&mut tar, &spec("PaxHeaders/f", b'x', header_mtime), &data);
            add(&mut tar, &spec("f", b'0', header_mtime), b"contents");
            end(&mut tar);
            (tar, data.len())
        };
        // Shrinking from two blocks to one.
        let (tar, len) = build(NEW, &format!("1700000000.{}", "9".repeat(20)), 470);
        assert!(len > BLOCK);
        let (out, clamped) = run(&tar, EPOCH);
        let (expected, len) = build(EPOCH, "1600000000", 470);
        assert!(len < BLOCK);
        assert_bytes(&out, &expected);
        assert_eq!(clamped.changed, 1);
        listing(&out);

        // Growing from one block to two, which only a negative epoch can do.
        let epoch = -100_000_000_000;
        let (tar, len) = build(NEW, "10", 486);
        assert!(len <= BLOCK);
        let (out, _) = run(&tar, epoch);
        let (expected, len) = build(epoch, &epoch.to_string(), 486);
        assert!(len > BLOCK);
        assert_bytes(&out, &expected);
        listing(&out);
    }

    #[test]
    fn pax_records_not_newer_than_the_epoch_are_untouched() {
        let data = pax(&[
            ("mtime", "1500000000.999"),
            ("atime", "1600000000"),
            ("ctime", "01600000000.000"),
            ("path", "a/path/from/pax"),
            ("mtime", "-1.5"),
        ]);
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/f", b'x', OLD), &data);
        add(&mut tar, &spec("f", b'0', OLD), b"contents");
        // A non-canonical length prefix of an unchanged record stays as it is too.
        add(&mut tar, &spec("PaxHeaders/g", b'x', OLD), b"0018 atime=1234.5\n");
        add(&mut tar, &spec("g", b'0', OLD), b"contents");
        end(&mut tar);
        let (out, clamped) = run(&tar, EPOCH);
        assert_bytes(&out, &tar);
        assert_eq!(clamped.changed, 0);

        // One nanosecond past the epoch is newer.
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/f", b'x', OLD), &pax(&[("mtime", "1600000000.000000001")]));
        add(&mut tar, &spec("f", b'0', OLD), b"contents");
        end(&mut tar);
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!(clamped.changed, 1);
        assert_eq!(&out[BLOCK..BLOCK + 23], b"20 mtime=1600000000\n\0\0\0");
    }

    #[test]
    fn set_mode_rewrites_older_times_too_and_is_otherwise_the_clamp() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/f", b'x', OLD), &pax(&[("mtime", "1500000000.5"), ("path", "a/f")]));
        add(&mut tar, &spec("f", b'0', OLD), b"contents");
        add(&mut tar, &spec("g", b'0', EPOCH), b"at the epoch already");
        end(&mut tar);
        let set = Policy { epoch: EPOCH, mode: Mode::Set };
        let mut out = Vec::new();
        let done = rewrite_times(&tar[..], &mut out, set).unwrap();
        assert_eq!(done.changed, 1, "only the entry with older times changes");
        let listed = entries(&out[..]).unwrap();
        assert_eq!(
            listed.iter().map(|e| (e.path.as_str(), e.mtime)).collect::<Vec<_>>(),
            [("a/f", EPOCH), ("g", EPOCH)]
        );
        assert_eq!(&out[BLOCK..BLOCK + 20], format!("20 mtime={EPOCH}\n").as_bytes());
        // The clamp leaves the same archive alone, and both are idempotent.
        let (clamped, c) = run(&tar, EPOCH);
        assert_eq!((clamped, c.changed), (tar.clone(), 0));
        let mut again = Vec::new();
        assert_eq!(rewrite_times(&out[..], &mut again, set).unwrap().changed, 0);
        assert_eq!(again, out);
    }

    #[test]
    fn malformed_pax_records_are_invalid_data() {
        for data in [&b"12 mtime=1\n"[..], b"11 mtime=1x", b"x mtime=1\n", b"11 mtime=.5\n", b"6 =ab\n", b"10 mtime1\n"]
        {
            let mut tar = Vec::new();
            add(&mut tar, &spec("PaxHeaders/f", b'x', OLD), data);
            add(&mut tar, &spec("f", b'0', OLD), b"");
            end(&mut tar);
            let error = error_of(&tar);
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{data:?}");
            assert!(error.to_string().contains("extended header at offset 0"), "{error}");
        }
    }

    #[test]
    fn extension_headers_have_their_own_mtimes_clamped() {
        let build = |mtime, old| {
            let long_name = "n".repeat(150);
            let long_link = "l".repeat(120);
            let mut tar = Vec::new();
            add(&mut tar, &spec("PaxHeaders/global", b'g', mtime), &pax(&[("comment", "global")]));
            add(&mut tar, &spec("PaxHeaders/f", b'x', mtime), &pax(&[("uid", "70000")]));
            add(&mut tar, &Spec { format: Format::Gnu, ..spec("././@LongLink", b'L', mtime) }, long_name.as_bytes());
            add(&mut tar, &Spec { format: Format::Gnu, ..spec("././@LongLink", b'K', mtime) }, long_link.as_bytes());
            add(&mut tar, &Spec { format: Format::Gnu, ..spec(&long_name[..100], b'2', old) }, b"");
            end(&mut tar);
            tar
        };
        let (out, clamped) = run(&build(NEW, OLD), EPOCH);
        assert_bytes(&out, &build(EPOCH, OLD));
        // The global header is an entry of its own; the others belong to the symlink, which counts as changed.
        assert_eq!((clamped.entries, clamped.changed), (2, 2));
    }

    #[test]
    fn gnu_long_names_and_links_are_followed() {
        let long_name = format!("{}/{}", "d".repeat(80), "f".repeat(70));
        let long_link = format!("../{}", "t".repeat(110));
        let gnu = |s: Spec| Spec { format: Format::Gnu, ..s };
        let mut tar = Vec::new();
        add(&mut tar, &gnu(spec("././@LongLink", b'L', NEW)), format!("{long_name}\0").as_bytes());
        add(&mut tar, &gnu(spec(&long_name[..100], b'0', NEW)), b"long");
        add(&mut tar, &gnu(spec("././@LongLink", b'L', OLD)), format!("{long_name}.link\0").as_bytes());
        add(&mut tar, &gnu(spec("././@LongLink", b'K', OLD)), format!("{long_link}\0").as_bytes());
        add(&mut tar, &gnu(Spec { link: long_link[..100].into(), ..spec(&long_name[..100], b'2', OLD) }), b"");
        end(&mut tar);

        let list = entries(&tar[..]).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].path.as_str(), list[0].sha256.as_deref()),
            (long_name.as_str(), Some(sha(b"long").as_str()))
        );
        assert_eq!((list[1].path.clone(), list[1].link.as_str()), (format!("{long_name}.link"), long_link.as_str()));

        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!((clamped.entries, clamped.changed), (2, 1));
        assert_eq!(entries(&out[..]).unwrap()[1..], list[1..]);
        let shown = listing(&out);
        assert!(line(&shown, &long_name).contains(EPOCH_SHOWN), "{shown}");
        assert!(shown.contains(&format!("{long_name}.link -> {long_link}")), "{shown}");

        // When a writer left both a PAX path and a GNU long name, Go (and so docker) takes the long name, because
        // it merges the PAX records first. GNU tar takes the PAX path; entries() follows Go.
        let mut both = Vec::new();
        add(&mut both, &spec("PaxHeaders/f", b'x', OLD), &pax(&[("path", "from/pax")]));
        add(&mut both, &gnu(spec("././@LongLink", b'L', OLD)), format!("{long_name}\0").as_bytes());
        add(&mut both, &gnu(spec(&long_name[..100], b'0', OLD)), b"long");
        end(&mut both);
        assert_eq!(entries(&both[..]).unwrap()[0].path, long_name);
        assert!(listing(&both).contains(" from/pax\n"));
    }

    #[test]
    fn ustar_prefix_holds_the_leading_directories_of_long_paths() {
        let prefix = format!("{}/{}", "p".repeat(60), "q".repeat(60));
        let mut tar = Vec::new();
        let h = add(&mut tar, &Spec { prefix: prefix.clone(), ..spec("file.txt", b'0', NEW) }, b"deep");
        end(&mut tar);
        let path = format!("{prefix}/file.txt");
        assert!(path.len() > 100);
        assert_eq!(entries(&tar[..]).unwrap()[0].path, path);

        let (out, _) = run(&tar, EPOCH);
        assert!(diffs(&tar, &out).iter().all(|&at| (h + 136..h + 156).contains(&at)));
        assert_eq!(entries(&out[..]).unwrap()[0].path, path);
        assert!(line(&listing(&out), &path).contains(EPOCH_SHOWN));
    }

    #[test]
    fn hard_links_and_symlinks_keep_their_targets_and_have_no_data() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("bin/tool", b'0', NEW), b"#!/bin/sh\n");
        add(&mut tar, &Spec { link: "bin/tool".into(), ..spec("bin/hard", b'1', NEW) }, b"");
        add(&mut tar, &Spec { link: "../bin/tool".into(), ..spec("usr/soft", b'2', NEW) }, b"");
        // Go takes the data of a hard link to be empty whatever its size field says, and so must the clamp, or it
        // would swallow the next header as data.
        add(&mut tar, &Spec { link: "bin/tool".into(), size: Some(10), ..spec("bin/hard2", b'1', OLD) }, b"");
        // So must it for an old-style directory: a '\0' entry whose name ends with a slash.
        add(&mut tar, &Spec { size: Some(700), ..spec("legacy/", b'\0', OLD) }, b"");
        add(&mut tar, &spec("bin/after", b'0', OLD), b"after");
        end(&mut tar);

        let list = entries(&tar[..]).unwrap();
        let summary: Vec<_> =
            list.iter().map(|e| (e.path.as_str(), e.kind, e.link.as_str(), e.size, e.sha256.is_some())).collect();
        assert_eq!(
            summary,
            [
                ("bin/tool", '0', "", 10, true),
                ("bin/hard", '1', "bin/tool", 0, false),
                ("usr/soft", '2', "../bin/tool", 0, false),
                ("bin/hard2", '1', "bin/tool", 10, false),
                ("legacy/", '5', "", 700, false),
                ("bin/after", '0', "", 5, true),
            ]
        );
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!((clamped.entries, clamped.changed), (6, 3));
        let relisted = entries(&out[..]).unwrap();
        for (before, after) in list.iter().zip(&relisted) {
            assert_eq!(*after, Entry { mtime: before.mtime.min(EPOCH), ..before.clone() });
        }
    }

    #[test]
    fn whiteouts_are_copied_like_any_file() {
        let mut tar = Vec::new();
        let headers = [
            add(&mut tar, &spec("etc/", b'5', NEW), b""),
            add(&mut tar, &spec("etc/.wh.foo", b'0', NEW), b""),
            add(&mut tar, &spec("var/cache/.wh..wh..opq", b'0', NEW), b""),
        ];
        end(&mut tar);
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!(clamped.changed, 3);
        assert!(diffs(&tar, &out).iter().all(|&at| headers.iter().any(|h| (h + 136..h + 156).contains(&at))));
        let names: Vec<_> = entries(&out[..]).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(names, ["etc/", "etc/.wh.foo", "var/cache/.wh..wh..opq"]);
        assert!(line(&listing(&out), "var/cache/.wh..wh..opq").contains(EPOCH_SHOWN));
    }

    #[test]
    fn unchanged_archive_is_byte_identical_and_diff_id_hashes_the_output() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("a", b'0', OLD), b"a");
        add(&mut tar, &spec("b", b'0', EPOCH), &[1u8; 3000]);
        end(&mut tar);
        let (out, clamped) = run(&tar, EPOCH);
        assert_bytes(&out, &tar);
        assert_eq!(
            clamped,
            Clamped { diff_id: format!("sha256:{}", sha(&tar)), size: tar.len() as u64, entries: 2, changed: 0 }
        );

        let (out, clamped) = run(&tar, OLD);
        assert_ne!(out, tar);
        assert_eq!(clamped.diff_id, format!("sha256:{}", sha(&out)));
        assert_eq!(clamped.size, out.len() as u64);
        assert_eq!(clamped.diff_id.len(), 7 + 64);
    }

    #[test]
    fn bytes_after_the_end_marker_are_preserved() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("a", b'0', NEW), b"a");
        end(&mut tar);
        tar.resize(10240, 0);
        tar.extend_from_slice(b"trailing bytes that are not a multiple of a block");
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!(out.len(), tar.len());
        assert_bytes(&out[1024..], &tar[1024..]);
        assert_eq!(clamped.entries, 1);
    }

    #[test]
    fn truncated_archives_are_errors_that_name_the_place() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("first", b'0', OLD), &[1u8; 1000]);
        add(&mut tar, &spec("PaxHeaders/second", b'x', OLD), &pax(&[("path", "second")]));
        add(&mut tar, &spec("second", b'0', OLD), b"2");
        end(&mut tar);
        assert!(clamp(&tar[..], io::sink(), EPOCH).is_ok());
        let cases: [(usize, io::ErrorKind, &str); 8] = [
            (100, io::ErrorKind::UnexpectedEof, "inside the header at offset 0"),
            (700, io::ErrorKind::UnexpectedEof, "inside the data of 'first' (header at offset 0)"),
            (1500, io::ErrorKind::UnexpectedEof, "inside the data of 'first' (header at offset 0)"),
            (1536, io::ErrorKind::InvalidData, "ends at offset 1536 without the end-of-archive marker"),
            (2100, io::ErrorKind::UnexpectedEof, "inside the extended header at offset 1536"),
            (2560, io::ErrorKind::InvalidData, "ends at offset 2560 without"),
            (3584, io::ErrorKind::InvalidData, "ends at offset 3584 without"),
            (tar.len() - 100, io::ErrorKind::UnexpectedEof, "inside the end-of-archive marker at offset 4096"),
        ];
        let cases = cases.into_iter().map(|(cut, kind, text)| (tar[..cut].to_vec(), kind, text));
        // The second entry's header follows its 'x' header, which is then left without an entry.
        let mut dangling = tar[..2560].to_vec();
        end(&mut dangling);
        let mut lone = tar[..3584].to_vec();
        lone.extend_from_slice(&ZEROS);
        lone.extend_from_slice(&tar[..BLOCK]);
        let more = [
            (dangling, io::ErrorKind::InvalidData, "extended header at offset 1536 is not followed by an entry"),
            (lone, io::ErrorKind::InvalidData, "lone zero block at offset 3584"),
        ];
        for (input, kind, text) in cases.chain(more) {
            let error = error_of(&input);
            assert_eq!(error.kind(), kind, "{error}");
            assert!(error.to_string().contains(text), "{error} does not say {text}");
        }
        // The second entry is named by its PAX path, and the padding after its data counts as part of it.
        let error = error_of(&tar[..3072 + 511]);
        assert!(error.to_string().contains("inside the data of 'second' (header at offset 2560)"), "{error}");
    }

    #[test]
    fn wrong_checksums_are_invalid_data_naming_the_offset() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("first", b'0', OLD), &[1u8; 600]);
        add(&mut tar, &spec("second", b'0', OLD), b"2");
        end(&mut tar);
        tar[1536 + 3] ^= 1;
        let error = error_of(&tar);
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(error.to_string(), "header at offset 1536 has a wrong checksum (entry 'secnnd')");

        // Data that is no tar at all fails at the first header.
        let error = error_of(&[b'x'; 2048]);
        assert!(error.to_string().starts_with("header at offset 0 has a wrong checksum"), "{error}");

        // A checksum summed over signed bytes, as some old writers did, is accepted.
        let mut tar = Vec::new();
        add(&mut tar, &spec("caf\u{e9}", b'0', OLD), b"");
        end(&mut tar);
        let signed: i32 = tar[..BLOCK]
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i32::from(b as i8) })
            .sum();
        put(&mut tar, 148, format!("{signed:06o}\0 ").as_bytes());
        assert!(!checksum_ok(&tar[..BLOCK]));
        assert_eq!(entries(&tar[..]).unwrap()[0].path, "caf\u{e9}");
    }

    #[test]
    fn entries_report_effective_values() {
        let long = format!("{}/long.txt", "x".repeat(120));
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/global", b'g', OLD), &pax(&[("comment", "hi")]));
        add(&mut tar, &spec("dir/", b'5', NEW), b"");
        let pax_data =
            pax(&[("path", &long), ("mtime", "1700000000.75"), ("uid", "70000"), ("gid", "80000"), ("size", "5")]);
        add(&mut tar, &spec("PaxHeaders/long.txt", b'x', OLD), &pax_data);
        // The header's own size field says 0: the PAX size decides how much data follows.
        add(&mut tar, &Spec { size: Some(0), mode: 0o600, ..spec("truncated-name", b'0', OLD) }, b"hello");
        add(&mut tar, &spec("PaxHeaders/link", b'x', OLD), &pax(&[("linkpath", &long)]));
        add(&mut tar, &Spec { link: "short".into(), ..spec("dir/link", b'2', OLD) }, b"");
        add(&mut tar, &Spec { uid: 1000, gid: 100, ..spec("dir/empty", b'\0', OLD) }, b"");
        add(&mut tar, &spec("dir/fifo", b'6', OLD), b"");
        end(&mut tar);

        let entry = |path: &str, kind, size, mode, mtime, link: &str, sha256: Option<String>| Entry {
            path: path.into(),
            kind,
            size,
            mode,
            uid: 0,
            gid: 0,
            mtime,
            link: link.into(),
            sha256,
        };
        let list = entries(&tar[..]).unwrap();
        assert_eq!(
            list,
            [
                entry("PaxHeaders/global", 'g', 14, 0o644, OLD, "", None),
                entry("dir/", '5', 0, 0o755, NEW, "", None),
                Entry { uid: 70000, gid: 80000, ..entry(&long, '0', 5, 0o600, NEW, "", Some(sha(b"hello"))) },
                entry("dir/link", '2', 0, 0o644, OLD, &long, None),
                Entry { uid: 1000, gid: 100, ..entry("dir/empty", '0', 0, 0o644, OLD, "", Some(sha(b""))) },
                entry("dir/fifo", '6', 0, 0o644, OLD, "", None),
            ]
        );
        assert_eq!(list[4].sha256.as_deref(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));

        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!((clamped.entries, clamped.changed), (6, 2));
        let relisted = entries(&out[..]).unwrap();
        assert_eq!(relisted[2], Entry { mtime: EPOCH, ..list[2].clone() });
        let shown = listing(&out);
        assert!(line(&shown, &long).contains(EPOCH_SHOWN), "{shown}");
    }

    #[test]
    fn clamping_twice_gives_the_same_bytes_as_once() {
        let mut tar = Vec::new();
        add(&mut tar, &spec("PaxHeaders/global", b'g', NEW), &pax(&[("mtime", "1700000000.5")]));
        add(&mut tar, &spec("PaxHeaders/f", b'x', NEW), &pax(&[("mtime", "1700000000.25"), ("atime", "1.5")]));
        add(&mut tar, &spec("f", b'0', NEW), b"f");
        add(&mut tar, &Spec { format: Format::Gnu, ..spec("././@LongLink", b'L', NEW) }, &[b'n'; 200]);
        add(&mut tar, &Spec { format: Format::Gnu, ..spec("n", b'0', NEW) }, b"n");
        add(&mut tar, &spec("old", b'0', OLD), b"old");
        end(&mut tar);
        let (once, first) = run(&tar, EPOCH);
        assert_eq!(first.changed, 3);
        let (twice, second) = run(&once, EPOCH);
        assert_bytes(&twice, &once);
        assert_eq!(second, Clamped { changed: 0, ..first });
    }

    /// A layer with one big file whose contents are generated as they are read, never held whole. It fills each
    /// read completely, as a file would, and publishes how far it has been read.
    struct Synthetic {
        header: [u8; BLOCK],
        size: u64,
        pos: Rc<Cell<u64>>,
    }

    const PATTERN: &[u8; 4099] = &{
        let mut pattern = [0u8; 4099];
        let mut i = 0;
        while i < pattern.len() {
            pattern[i] = (i * 31 % 251) as u8;
            i += 1;
        }
        pattern
    };

    fn synthetic(mtime: i64, size: u64) -> Synthetic {
        Synthetic { header: header(&spec("big.bin", b'0', mtime), size), size, pos: Rc::default() }
    }

    impl Synthetic {
        fn len(&self) -> u64 {
            BLOCK as u64 + self.size + padding(self.size) + 2 * BLOCK as u64
        }

        fn byte_run(&self, pos: u64, buf: &mut [u8]) -> usize {
            let data_end = BLOCK as u64 + self.size;
            if pos < BLOCK as u64 {
                let from = &self.header[pos as usize..];
                let n = from.len().min(buf.len());
                buf[..n].copy_from_slice(&from[..n]);
                n
            } else if pos < data_end {
                let at = ((pos - BLOCK as u64) % PATTERN.len() as u64) as usize;
                let n = (PATTERN.len() - at).min(buf.len()).min((data_end - pos) as usize);
                buf[..n].copy_from_slice(&PATTERN[at..at + n]);
                n
            } else {
                let n = buf.len().min((self.len() - pos) as usize);
                buf[..n].fill(0);
                n
            }
        }
    }

    impl Read for Synthetic {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut filled = 0;
            while filled < buf.len() {
                let n = self.byte_run(self.pos.get(), &mut buf[filled..]);
                if n == 0 {
                    break;
                }
                self.pos.set(self.pos.get() + n as u64);
                filled += n;
            }
            Ok(filled)
        }
    }

    /// Checks what the clamp writes against the layer that would have been written with the epoch as the mtime,
    /// and records how far the clamp had read its input ahead of what it had written.
    struct Checker {
        expected: Synthetic,
        written: u64,
        read: Rc<Cell<u64>>,
        most_ahead: u64,
    }

    impl Write for Checker {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut expected = vec![0u8; buf.len()];
            assert_eq!(self.expected.read(&mut expected).unwrap(), buf.len(), "too much output");
            assert!(
                buf == expected,
                "output differs within bytes {}..{}",
                self.written,
                self.written + buf.len() as u64
            );
            // Measured before counting this write, so that bytes held back and then written at once still count.
            self.most_ahead = self.most_ahead.max(self.read.get() - self.written);
            self.written += buf.len() as u64;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_large_entry_is_streamed_through() {
        let input = synthetic(NEW, 64 << 20);
        let read = input.pos.clone();
        let mut checker = Checker { expected: synthetic(EPOCH, 64 << 20), written: 0, read, most_ahead: 0 };
        let clamped = clamp(input, &mut checker, EPOCH).unwrap();
        assert_eq!(checker.written, checker.expected.len());
        assert_eq!((clamped.entries, clamped.changed, clamped.size), (1, 1, checker.written));
        // Hashing 64 MiB again would take seconds in a debug build, so the digest of the expected bytes (which the
        // checker compared one by one) was computed once, by a separate Python generator of the same layer.
        assert_eq!(clamped.diff_id, "sha256:54782056c4d866cbe48cee680438359d1dd18586a354c87087bc88a04d8484c6");
        // Input is never read further ahead of the output than the 1 MiB read buffer and the 64 KiB write buffer.
        assert!(checker.most_ahead <= (CHUNK + (64 << 10) + BLOCK) as u64, "read {} ahead", checker.most_ahead);

        // A file that spans several read chunks is hashed whole.
        let size = 3 * CHUNK as u64 + 1234;
        let mut layer = Vec::new();
        synthetic(OLD, size).read_to_end(&mut layer).unwrap();
        let contents = &layer[BLOCK..BLOCK + size as usize];
        let list = entries(&layer[..]).unwrap();
        assert_eq!((list[0].size, list[0].sha256.clone()), (size, Some(sha(contents))));
    }

    /// Sets a file's times the way a build would have left them, through the real `touch`.
    fn touch(path: &Path, time: &str) {
        let status = Command::new("touch").args(["-h", "-d", &format!("@{time}")]).arg(path).status().unwrap();
        assert!(status.success());
    }

    fn mtime_of(path: &Path) -> Duration {
        std::fs::symlink_metadata(path).unwrap().modified().unwrap().duration_since(UNIX_EPOCH).unwrap()
    }

    /// A directory tree with new and old times, long paths, links and whiteouts, for GNU tar to archive.
    fn tree() -> (tempfile::TempDir, Vec<(&'static str, &'static str)>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let deep = format!("d/{}/{}", "a".repeat(70), "b".repeat(60));
        std::fs::create_dir_all(root.join(&deep)).unwrap();
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/new.txt"), "new\n").unwrap();
        std::fs::write(root.join("d/old.txt"), "old\n").unwrap();
        std::fs::write(root.join("d/frac.txt"), "fraction\n").unwrap();
        std::fs::write(root.join(&deep).join("file-with-a-long-path.txt"), "deep\n").unwrap();
        std::fs::write(root.join("d/.wh.gone"), "").unwrap();
        std::fs::write(root.join("d/sub/.wh..wh..opq"), "").unwrap();
        std::fs::hard_link(root.join("d/new.txt"), root.join("d/hard")).unwrap();
        std::os::unix::fs::symlink("new.txt", root.join("d/link")).unwrap();
        let times = vec![
            ("d/new.txt", "1700000000"),
            ("d/old.txt", "1000000000"),
            ("d/frac.txt", "1700000000.5"),
            ("d/.wh.gone", "1500000000"),
            ("d/sub/.wh..wh..opq", "1700000000"),
            ("d/link", "1700000000"),
            ("d/sub", "1000000000"),
            ("d", "1700000000"),
        ];
        touch(&root.join(&deep).join("file-with-a-long-path.txt"), "1700000000");
        for (path, time) in &times {
            touch(&root.join(path), time);
        }
        (dir, times)
    }

    #[test]
    fn real_gnu_tar_archives_are_clamped_and_still_extract() {
        let (dir, times) = tree();
        for format in ["pax", "ustar", "gnu"] {
            let source = dir.path().to_str().unwrap();
            let tar = gnu_tar(&[&format!("--format={format}"), "--sort=name", "-C", source, "-cf", "-", "d"], b"");
            let (out, clamped) = run(&tar, EPOCH);
            let names = String::from_utf8(gnu_tar(&["-tf", "-"], &tar)).unwrap();
            assert_eq!(clamped.entries, names.lines().count() as u64, "{format}");
            assert!(clamped.changed >= 5, "{format}: {clamped:?}");
            assert_eq!(entries(&out[..]).unwrap().len() as u64, clamped.entries);
            assert_bytes(&run(&out, EPOCH).0, &out);

            // GNU tar extracts the clamped archive with the clamped times and the original contents.
            let target = tempfile::tempdir().unwrap();
            gnu_tar(&["-xf", "-", "-C", target.path().to_str().unwrap()], &out);
            for (path, time) in &times {
                let original: f64 = time.parse().unwrap();
                let expected = if original > EPOCH as f64 {
                    Duration::from_secs(EPOCH as u64)
                } else {
                    Duration::from_secs_f64(original)
                };
                assert_eq!(mtime_of(&target.path().join(path)), expected, "{format}: {path}");
            }
            for file in ["d/new.txt", "d/old.txt", "d/frac.txt", "d/hard"] {
                let extracted = std::fs::read(target.path().join(file)).unwrap();
                assert_eq!(extracted, std::fs::read(dir.path().join(file)).unwrap(), "{format}: {file}");
            }
            assert_eq!(std::fs::read_link(target.path().join("d/link")).unwrap(), Path::new("new.txt"));

            // No time left in the clamped archive is newer than the epoch, PAX records included.
            for entry in entries(&out[..]).unwrap() {
                assert!(entry.mtime <= EPOCH, "{format}: {entry:?}");
            }
            if format == "pax" {
                let text = String::from_utf8_lossy(&out);
                assert!(text.contains("ctime=1600000000\n") && !text.contains("ctime=17"), "{format}");
            }
        }
    }

    #[test]
    fn gnu_incremental_atime_and_ctime_fields_are_clamped() {
        let (dir, _) = tree();
        let source = dir.path().to_str().unwrap();
        let tar = gnu_tar(&["--format=gnu", "--incremental", "-C", source, "-cf", "-", "d/new.txt", "d/old.txt"], b"");
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!(clamped.changed, 2);
        let mut at = 0;
        let mut seen = 0;
        while out[at..at + BLOCK] != ZEROS {
            let h: &[u8; BLOCK] = out[at..at + BLOCK].try_into().unwrap();
            assert!(is_gnu(h) && checksum_ok(h));
            for field in [MTIME, GNU_ATIME, GNU_CTIME] {
                assert!(parse_numeric(&h[field]).unwrap() <= EPOCH);
            }
            // The atime and ctime of the old file were set by touch and the test, so they are new as well.
            assert_eq!(parse_numeric(&h[GNU_CTIME]), Some(EPOCH));
            seen += 1;
            let size = parse_numeric(&h[SIZE]).unwrap() as u64;
            at += BLOCK + (size + padding(size)) as usize;
        }
        assert_eq!(seen, 2);
        listing(&out);
    }

    #[test]
    fn gnu_sparse_map_blocks_are_copied_before_the_data() {
        // A hand-built old GNU sparse header whose map continues in one extra block.
        let mut tar = Vec::new();
        let mut h = header(&Spec { format: Format::Gnu, ..spec("sparse", b'S', NEW) }, 1024);
        h[GNU_IS_EXTENDED] = 1;
        put(&mut h, 483, b"00000040000\0");
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        tar.extend_from_slice(&h);
        let mut map = [0u8; BLOCK];
        // One more region: offset 8 KiB, 512 bytes, in the map's first 24-byte slot.
        put(&mut map, 0, b"00000020000\0");
        put(&mut map, 12, b"00000001000\0");
        tar.extend_from_slice(&map);
        tar.extend_from_slice(&[b's'; 1024]);
        add(&mut tar, &spec("after", b'0', OLD), b"after");
        end(&mut tar);

        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!((clamped.entries, clamped.changed), (2, 1));
        assert!(diffs(&tar, &out).iter().all(|&at| (136..156).contains(&at)));
        let names: Vec<_> = entries(&out[..]).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(names, ["sparse", "after"]);

        // And one GNU tar wrote, for a file with more holes than the header's own map can describe.
        let dir = tempfile::tempdir().unwrap();
        let mut file = std::fs::File::create(dir.path().join("holes")).unwrap();
        for i in 0..10u64 {
            io::Seek::seek(&mut file, io::SeekFrom::Start(i << 20)).unwrap();
            file.write_all(&[b'h'; 100]).unwrap();
        }
        drop(file);
        touch(&dir.path().join("holes"), "1700000000");
        let tar = gnu_tar(&["--format=gnu", "-S", "-C", dir.path().to_str().unwrap(), "-cf", "-", "holes"], b"");
        let (out, clamped) = run(&tar, EPOCH);
        assert_eq!(clamped.changed, 1);
        let target = tempfile::tempdir().unwrap();
        gnu_tar(&["-xf", "-", "-C", target.path().to_str().unwrap()], &out);
        assert_eq!(
            std::fs::read(target.path().join("holes")).unwrap(),
            std::fs::read(dir.path().join("holes")).unwrap()
        );
        assert_eq!(mtime_of(&target.path().join("holes")), Duration::from_secs(EPOCH as u64));
    }

    #[test]
    fn numeric_fields_are_read_in_octal_and_base256() {
        assert_eq!(parse_numeric(b"00000000017\0"), Some(15));
        assert_eq!(parse_numeric(b"     17 \0\0\0\0"), Some(15));
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(parse_numeric(b"0000001 7\0\0\0"), None);
        assert_eq!(parse_numeric(b"00000000018\0"), None);
        assert_eq!(parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]), Some(258));
        assert_eq!(parse_numeric(&[0xff; 12]), Some(-1));
        assert_eq!(
            parse_numeric(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfe]),
            Some(-258)
        );
        assert_eq!(parse_numeric(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut field = [0u8; 12];
        for time in [0, EPOCH, 8i64.pow(11) - 1, 8i64.pow(11), -1, i64::MIN, i64::MAX] {
            put_time(&mut field, time);
            assert_eq!(parse_numeric(&field), Some(time));
        }
    }
}
