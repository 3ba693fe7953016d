//! Image archives as `docker save` writes them, and the legacy archive `docker load` reads.
//!
//! Reading works on a saved archive file: one pass over its tar headers records where each entry
//! lies, then `manifest.json` names the config and the layers, in both shapes Docker writes (the
//! classic `<id>/layer.tar` archive and the OCI layout of Docker 25+, `blobs/sha256/…`). Layers
//! are streamed from their place in the file, decompressed on the fly when gzip or zstd, and never
//! held in memory. Writing produces a plain USTAR archive front to back, so that it can go straight
//! into `docker load`'s stdin: each entry's size is announced before its data.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use camino::{Utf8Path, Utf8PathBuf};

const BLOCK: u64 = 512;

#[derive(Debug)]
pub enum ArchiveError {
    Io { path: Utf8PathBuf, source: io::Error },
    Format { path: Utf8PathBuf, what: String },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Io { path, source } => write!(f, "failed to read image archive {path}: {source}"),
            ArchiveError::Format { path, what } => write!(f, "image archive {path} is not as docker writes it: {what}"),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// Where one entry's data lies in the archive file.
#[derive(Clone, Copy, Debug)]
struct Span {
    offset: u64,
    size: u64,
}

/// How a layer blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A `docker save` archive on disk, indexed.
pub struct SavedImage {
    path: Utf8PathBuf,
    /// The raw config bytes: their sha256 is the image's config digest.
    pub config_bytes: Vec<u8>,
    pub config: serde_json::Value,
    layers: Vec<(String, Span, Compression)>,
}

impl SavedImage {
    /// Indexes a saved archive and reads its manifest and config.
    pub fn open(path: &Utf8Path) -> Result<SavedImage, ArchiveError> {
        let io_err = |source| ArchiveError::Io { path: path.to_owned(), source };
        let format = |what: String| ArchiveError::Format { path: path.to_owned(), what };
        let mut file = File::open(path).map_err(io_err)?;
        let index = index_entries(&mut file).map_err(io_err)?;
        let read_entry = |file: &mut File, name: &str| -> Result<Vec<u8>, ArchiveError> {
            let span = index.get(name).ok_or_else(|| format(format!("it has no {name}")))?;
            let mut buf = vec![0u8; span.size as usize];
            file.seek(SeekFrom::Start(span.offset)).map_err(io_err)?;
            file.read_exact(&mut buf).map_err(io_err)?;
            Ok(buf)
        };
        let manifest_bytes = read_entry(&mut file, "manifest.json")?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest_bytes).map_err(|e| format(format!("manifest.json: {e}")))?;
        let entry = match manifest.as_array().map(Vec::as_slice) {
            Some([one]) => one,
            Some(many) => return Err(format(format!("manifest.json lists {} images; save one at a time", many.len()))),
            None => return Err(format("manifest.json is not a list".into())),
        };
        let config_name = entry["Config"].as_str().ok_or_else(|| format("manifest.json has no Config".into()))?;
        let config_bytes = read_entry(&mut file, config_name)?;
        let config: serde_json::Value =
            serde_json::from_slice(&config_bytes).map_err(|e| format(format!("{config_name}: {e}")))?;
        let mut layers = Vec::new();
        for name in entry["Layers"].as_array().into_iter().flatten() {
            let name = name.as_str().ok_or_else(|| format("a Layers entry is not a string".into()))?;
            let span = *index.get(name).ok_or_else(|| format(format!("it has no layer {name}")))?;
            let compression = sniff(&mut file, span).map_err(io_err)?;
            layers.push((name.to_owned(), span, compression));
        }
        Ok(SavedImage { path: path.to_owned(), config_bytes, config, layers })
    }

    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    #[cfg(test)]
    pub fn layer_compression(&self, i: usize) -> Compression {
        self.layers[i].2
    }

    /// The stored bytes of layer `i`, as they lie in the archive (possibly compressed).
    pub fn layer_stored(&self, i: usize) -> io::Result<impl Read + use<>> {
        let (_, span, _) = self.layers[i];
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(span.offset))?;
        Ok(BufReader::with_capacity(1 << 20, file).take(span.size))
    }

    /// The uncompressed tar of layer `i` (its sha256 is the layer's diff_id).
    pub fn layer_tar(&self, i: usize) -> io::Result<Box<dyn Read + Send>> {
        let stored = self.layer_stored(i)?;
        Ok(match self.layers[i].2 {
            Compression::None => Box::new(stored),
            Compression::Gzip => Box::new(crate::process::decompress("gzip", stored)?),
            Compression::Zstd => Box::new(crate::process::decompress("zstd", stored)?),
        })
    }

    /// The ordered `rootfs.diff_ids` of the config.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The `created_by` of each history entry that made a layer, in layer order.
    pub fn layer_instructions(&self) -> Vec<String> {
        layer_instructions(&self.config)
    }
}

/// The `created_by` of each history entry of an image config that made a layer, in layer order
/// (entries marked `empty_layer` made none).
pub fn layer_instructions(config: &serde_json::Value) -> Vec<String> {
    config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Reads every tar header once, skipping data, and returns each regular file's span by name.
fn index_entries(file: &mut File) -> io::Result<HashMap<String, Span>> {
    let mut index = HashMap::new();
    let mut header = [0u8; BLOCK as usize];
    let mut offset = 0u64;
    let mut long_name: Option<String> = None;
    loop {
        file.seek(SeekFrom::Start(offset))?;
        match file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&header[124..136]).ok_or_else(|| invalid("bad size field"))?;
        let data = offset + BLOCK;
        let typeflag = header[156];
        let mut name = long_name.take().unwrap_or_else(|| header_name(&header));
        match typeflag {
            b'L' | b'x' => {
                let mut buf = vec![0u8; size as usize];
                file.read_exact(&mut buf)?;
                long_name = if typeflag == b'L' {
                    Some(String::from_utf8_lossy(&buf).trim_end_matches('\0').to_owned())
                } else {
                    pax_path(&buf)
                };
            }
            b'0' | 0 => {
                name = name.trim_start_matches("./").to_owned();
                index.insert(name, Span { offset: data, size });
            }
            _ => {}
        }
        offset = data + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(index)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn header_name(h: &[u8]) -> String {
    let field = |r: std::ops::Range<usize>| {
        let b = &h[r];
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    let (name, prefix) = (field(0..100), field(345..500));
    if &h[257..263] == b"ustar\0" && !prefix.is_empty() { format!("{prefix}/{name}") } else { name }
}

fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() { Some(0) } else { u64::from_str_radix(text, 8).ok() }
}

/// The `path` record of a PAX extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.split('\n').find_map(|rec| rec.split_once(' ').and_then(|(_, kv)| kv.strip_prefix("path=")).map(str::to_owned))
}

/// Recognises gzip and zstd by their magic bytes.
fn sniff(file: &mut File, span: Span) -> io::Result<Compression> {
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(span.offset))?;
    let n = file.take(4.min(span.size)).read(&mut magic)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// Writes a USTAR archive front to back (it can feed a pipe): every entry's size is known before
/// its data is streamed, and a stream that does not give exactly that many bytes is an error.
pub struct ArchiveWriter<W: Write> {
    out: BufWriter<W>,
    mtime: i64,
}

#[cfg(test)]
impl ArchiveWriter<File> {
    /// Starts an archive in a new file at `path`.
    pub fn create(path: &Utf8Path, mtime: i64) -> io::Result<ArchiveWriter<File>> {
        Ok(ArchiveWriter::new(File::create(path)?, mtime))
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out`; every header carries `mtime`.
    pub fn new(out: W, mtime: i64) -> ArchiveWriter<W> {
        ArchiveWriter { out: BufWriter::with_capacity(1 << 20, out), mtime }
    }

    /// Adds a directory entry.
    pub fn add_dir(&mut self, name: &str) -> io::Result<()> {
        let h = ustar_header(&format!("{}/", name.trim_end_matches('/')), 0, b'5', 0o755, self.mtime)?;
        self.out.write_all(&h)
    }

    /// Adds a file with the given contents.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.add_sized(name, data.len() as u64, |w| w.write_all(data))
    }

    /// Adds a file of `size` bytes that `fill` writes; returns what `fill` returned.
    pub fn add_sized<T>(
        &mut self,
        name: &str,
        size: u64,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
    ) -> io::Result<T> {
        self.out.write_all(&ustar_header(name, size, b'0', 0o644, self.mtime)?)?;
        let mut counter = Counter { inner: &mut self.out, n: 0 };
        let value = fill(&mut counter)?;
        if counter.n != size {
            return Err(invalid(&format!("{name}: {} bytes were written where {size} were announced", counter.n)));
        }
        let pad = (BLOCK - size % BLOCK) % BLOCK;
        self.out.write_all(&vec![0u8; pad as usize])?;
        Ok(value)
    }

    /// Writes the end-of-archive marker and flushes. There is no fsync: our archives are
    /// temporary, read at once by `docker load`, and remade if anything fails.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&[0u8; 2 * BLOCK as usize])?;
        self.out.flush()
    }
}

/// Counts the bytes written through it.
struct Counter<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A USTAR header for a short name (all of ours are under 100 bytes).
fn ustar_header(name: &str, size: u64, typeflag: u8, mode: u32, mtime: i64) -> io::Result<[u8; 512]> {
    if name.len() >= 100 {
        return Err(invalid("archive entry name too long"));
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mut put = |range: std::ops::Range<usize>, value: u64| {
        let width = range.len() - 1;
        let text = format!("{value:0width$o}");
        h[range.start..range.start + width].copy_from_slice(text.as_bytes());
    };
    put(100..108, u64::from(mode));
    put(108..116, 0);
    put(116..124, 0);
    put(124..136, size);
    put(136..148, mtime.max(0) as u64);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_tar_reads_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("a.tar")).unwrap();
        let mut w = ArchiveWriter::create(&path, 1_735_787_045).unwrap();
        w.add_dir("layer-0").unwrap();
        w.add_sized("layer-0/layer.tar", 1000, |out| out.write_all(&vec![7u8; 1000])).unwrap();
        w.add_bytes("cfg.json", br#"{"rootfs":{"diff_ids":["sha256:x"]},"history":[{"created_by":"A"},{"created_by":"B","empty_layer":true}]}"#).unwrap();
        w.add_bytes("manifest.json", br#"[{"Config":"cfg.json","RepoTags":[],"Layers":["layer-0/layer.tar"]}]"#)
            .unwrap();
        w.finish().unwrap();
        let listing = std::process::Command::new("tar").arg("-tvf").arg(&path).output().unwrap();
        assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
        let text = String::from_utf8(listing.stdout).unwrap();
        assert!(text.contains("1000 2025-01-02 03:04 layer-0/layer.tar"), "{text}");

        let saved = SavedImage::open(&path).unwrap();
        assert_eq!(saved.layer_count(), 1);
        assert_eq!(saved.diff_ids(), ["sha256:x"]);
        assert_eq!(saved.layer_instructions(), ["A"]);
        let mut data = Vec::new();
        saved.layer_tar(0).unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data, vec![7u8; 1000]);

        let mut short = ArchiveWriter::new(Vec::new(), 0);
        let err = short.add_sized("short", 10, |out| out.write_all(b"nine byte")).unwrap_err();
        assert_eq!(err.to_string(), "short: 9 bytes were written where 10 were announced");
    }
}
