//! The local witness remote: a TriG file of quads, read whole and replaced atomically.
//!
//! This is the only module that reads or writes TriG (through `sophia_turtle`); the rest of the
//! program sees plain [`Term`]s and [`Quad`]s. Invariants: a record file is never half-written
//! (write a temporary file in the same directory, fsync, rename), and every writer holds an
//! exclusive advisory lock on `<file>.lock` from reading the old record to renaming the new one,
//! so concurrent writers all land and none loses another's quads.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};

use camino::{Utf8Path, Utf8PathBuf};
use sophia_api::MownStr;
use sophia_api::prefix::{Prefix, PrefixMapPair};
use sophia_api::prelude::{Iri, QuadParser, QuadSerializer, QuadSource};
use sophia_api::quad::{Quad as _, Spog};
use sophia_api::source::StreamError;
use sophia_api::term::{BnodeId, IriRef, LanguageTag, SimpleTerm, Term as _, TermKind};
use sophia_turtle::parser::trig::TriGParser;
use sophia_turtle::serializer::trig::{TriGConfig, TriGSerializer};

use crate::vocab::{RDF_LANG_STRING, XSD_STRING};

/// An RDF term, as the rest of the program sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    Iri(String),
    Blank(String),
    Literal { lexical: String, datatype: String, lang: Option<String> },
}

impl Term {
    pub fn iri(s: impl Into<String>) -> Term {
        Term::Iri(s.into())
    }

    /// A plain (`xsd:string`) literal.
    pub fn string(s: impl Into<String>) -> Term {
        Term::typed(s, XSD_STRING)
    }

    pub fn typed(s: impl Into<String>, datatype: &str) -> Term {
        Term::Literal { lexical: s.into(), datatype: datatype.to_owned(), lang: None }
    }

    /// The IRI, for an IRI.
    pub fn as_iri(&self) -> Option<&str> {
        match self {
            Term::Iri(i) => Some(i),
            _ => None,
        }
    }

    /// The lexical form, for a literal.
    pub fn as_literal(&self) -> Option<&str> {
        match self {
            Term::Literal { lexical, .. } => Some(lexical),
            _ => None,
        }
    }
}

/// One quad; ordered graph first so that a sorted dataset writes each graph's quads together.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quad {
    pub g: Option<Term>,
    pub s: Term,
    pub p: String,
    pub o: Term,
}

impl Quad {
    pub fn new(g: Option<&str>, s: &Term, p: &str, o: Term) -> Quad {
        Quad { g: g.map(Term::iri), s: s.clone(), p: p.to_owned(), o }
    }
}

/// A set of quads: a whole record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    quads: BTreeSet<Quad>,
}

impl Dataset {
    pub fn new() -> Dataset {
        Dataset::default()
    }

    pub fn insert(&mut self, q: Quad) -> bool {
        self.quads.insert(q)
    }

    pub fn extend(&mut self, quads: impl IntoIterator<Item = Quad>) {
        self.quads.extend(quads);
    }

    pub fn is_empty(&self) -> bool {
        self.quads.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.quads.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Quad> {
        self.quads.iter()
    }

    /// A subject index over the union of all graphs (the demo reads records that way).
    pub fn index(&self) -> Index<'_> {
        let mut by_subject: HashMap<&Term, Vec<&Quad>> = HashMap::new();
        for q in &self.quads {
            by_subject.entry(&q.s).or_default().push(q);
        }
        Index { by_subject }
    }
}

/// Subject → quads, over the union of all graphs.
pub struct Index<'a> {
    by_subject: HashMap<&'a Term, Vec<&'a Quad>>,
}

impl<'a> Index<'a> {
    /// Every object of `s p ?o`, in term order, without duplicates across graphs.
    pub fn objects(&self, s: &Term, p: &str) -> Vec<&'a Term> {
        let mut out: Vec<&Term> =
            self.by_subject.get(s).into_iter().flatten().filter(|q| q.p == p).map(|q| &q.o).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The only object of `s p ?o`, if there is exactly one.
    pub fn object(&self, s: &Term, p: &str) -> Option<&'a Term> {
        match self.objects(s, p).as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Every subject that has `rdf:type class`, in term order.
    pub fn subjects_of_type(&self, class: &str) -> Vec<&'a Term> {
        let mut out: Vec<&Term> = self
            .by_subject
            .iter()
            .filter(|(_, qs)| qs.iter().any(|q| q.p == crate::vocab::RDF_TYPE && q.o.as_iri() == Some(class)))
            .map(|(s, _)| *s)
            .collect();
        out.sort();
        out
    }

    /// Every quad about `s`, and about the nodes named `<s>#…` (its layers, its result), which
    /// belong to it.
    pub fn node_quads(&self, s: &Term) -> Vec<&'a Quad> {
        let mut out: Vec<&Quad> = self.by_subject.get(s).into_iter().flatten().copied().collect();
        if let Some(iri) = s.as_iri() {
            let prefix = format!("{iri}#");
            let parts: Vec<&Term> =
                out.iter().filter(|q| q.o.as_iri().is_some_and(|o| o.starts_with(&prefix))).map(|q| &q.o).collect();
            for part in parts {
                out.extend(self.by_subject.get(part).into_iter().flatten().copied());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[derive(Debug)]
pub enum RecordError {
    Missing { path: Utf8PathBuf },
    Parse { path: Utf8PathBuf, line: usize, column: usize, message: String },
    Unsupported { path: Utf8PathBuf, what: String },
    Io { path: Utf8PathBuf, action: &'static str, source: io::Error },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Missing { path } => write!(f, "record file {path} does not exist"),
            RecordError::Parse { path, line, column, message } => {
                write!(f, "record {path} is not valid TriG: line {line}, column {column}: {message}")
            }
            RecordError::Unsupported { path, what } => {
                write!(f, "record {path} holds {what}, which rtm-compute does not handle")
            }
            RecordError::Io { path, action, source } => write!(f, "failed to {action} {path}: {source}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Reads a whole record. A missing file is [`RecordError::Missing`].
pub fn read(path: &Utf8Path) -> Result<Dataset, RecordError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RecordError::Missing { path: path.to_owned() });
        }
        Err(source) => {
            return Err(RecordError::Io { path: path.to_owned(), action: "open", source });
        }
    };
    parse(BufReader::with_capacity(1 << 20, file), path)
}

/// Parses TriG text; `name` appears in errors.
pub fn parse(input: impl io::BufRead, name: &Utf8Path) -> Result<Dataset, RecordError> {
    let mut ds = Dataset::new();
    let mut unsupported = None;
    let result = TriGParser::new().with_preserve_bn_labels(true).parse(input).for_each_quad(|q| {
        let p = q.p().iri().map(|p| p.as_str().to_owned());
        let (Some(s), Some(p), Some(o)) = (from_sophia(q.s()), p, from_sophia(q.o())) else {
            unsupported.get_or_insert_with(|| "an RDF 1.2 triple term".to_owned());
            return;
        };
        let g = match q.g() {
            Some(g) => match from_sophia(g) {
                Some(g) => Some(g),
                None => return,
            },
            None => None,
        };
        ds.insert(Quad { g, s, p, o });
    });
    if let Err(e) = result {
        let (line, column) = e.position();
        let message = e.kind().to_string();
        return Err(RecordError::Parse { path: name.to_owned(), line: line + 1, column: column + 1, message });
    }
    match unsupported {
        Some(what) => Err(RecordError::Unsupported { path: name.to_owned(), what }),
        None => Ok(ds),
    }
}

fn from_sophia<T: sophia_api::term::Term>(t: T) -> Option<Term> {
    Some(match t.kind() {
        TermKind::Iri => Term::Iri(t.iri()?.as_str().to_owned()),
        TermKind::BlankNode => Term::Blank(stable_label(t.bnode_id()?.as_str())),
        TermKind::Literal => {
            let lexical = t.lexical_form()?.to_string();
            match t.language_tag() {
                Some(tag) => {
                    Term::Literal { lexical, datatype: RDF_LANG_STRING.to_owned(), lang: Some(tag.as_str().to_owned()) }
                }
                None => Term::Literal { lexical, datatype: t.datatype()?.as_str().to_owned(), lang: None },
            }
        }
        TermKind::Triple | TermKind::Variable => return None,
    })
}

/// sophia names anonymous nodes `bn0001` and, reading a label of that shape back, appends a `d`
/// to keep it apart from its own; a record rewritten on every append would grow such labels
/// forever. Prefixing them with `x` takes them out of that shape once, so labels stay stable.
fn stable_label(label: &str) -> String {
    let generated = label.strip_prefix("bn").is_some_and(|rest| {
        let rest = rest.trim_end_matches('d');
        let (digits, suffix) = rest.split_once('_').unwrap_or((rest, ""));
        digits.len() >= 4
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (suffix.is_empty() || suffix.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            && (rest.len() == digits.len() || !suffix.is_empty())
    });
    if generated { format!("x{label}") } else { label.to_owned() }
}

fn to_sophia(t: &Term) -> SimpleTerm<'static> {
    let iri = |s: &str| IriRef::new_unchecked(MownStr::from(s.to_owned()));
    match t {
        Term::Iri(i) => SimpleTerm::Iri(iri(i)),
        Term::Blank(b) => SimpleTerm::BlankNode(BnodeId::new_unchecked(MownStr::from(b.clone()))),
        Term::Literal { lexical, lang: Some(lang), .. } => SimpleTerm::LiteralLanguage(
            MownStr::from(lexical.clone()),
            LanguageTag::new_unchecked(MownStr::from(lang.clone())),
            None,
        ),
        Term::Literal { lexical, datatype, lang: None } => {
            SimpleTerm::LiteralDatatype(MownStr::from(lexical.clone()), iri(datatype))
        }
    }
}

/// Writes a dataset as TriG (sophia's streaming writer: linear in the record's size).
pub fn write_trig(ds: &Dataset, out: impl Write) -> io::Result<()> {
    let quads: Vec<Spog<SimpleTerm<'static>>> = ds
        .iter()
        .map(|q| ([to_sophia(&q.s), to_sophia(&Term::Iri(q.p.clone())), to_sophia(&q.o)], q.g.as_ref().map(to_sophia)))
        .collect();
    let mut w = BufWriter::with_capacity(1 << 20, out);
    TriGSerializer::new_with_config(&mut w, TriGConfig::new().with_own_prefix_map(prefixes()))
        .serialize_dataset(&quads)
        .map_err(|e| match e {
            StreamError::SourceError(never) => match never {},
            StreamError::SinkError(e) => e,
        })?;
    w.flush()
}

/// The prefixes our records declare.
fn prefixes() -> Vec<PrefixMapPair> {
    use crate::vocab::{DCTERMS, EARL, PROV, RTM, XSD};
    [
        ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
        ("xsd", XSD),
        ("rtm", RTM),
        ("prov", PROV),
        ("earl", EARL),
        ("dcterms", DCTERMS),
    ]
    .into_iter()
    .map(|(p, iri)| (Prefix::new_unchecked(p.into()), Iri::new_unchecked(iri.into())))
    .collect()
}

/// The TriG text of a dataset.
#[cfg(test)]
pub fn to_trig_string(ds: &Dataset) -> String {
    let mut buf = Vec::new();
    write_trig(ds, &mut buf).expect("writing to memory cannot fail");
    String::from_utf8(buf).expect("TriG is UTF-8")
}

/// Adds quads to the record at `path` (creating it and its directory if needed). `make` sees the
/// record as it is under the lock, so that it can pick identifiers that are not taken yet.
/// Returns what `make` returned once the new record is durably in place.
pub fn append<T>(path: &Utf8Path, make: impl FnOnce(&Dataset) -> (Vec<Quad>, T)) -> Result<T, RecordError> {
    fn io_err<'p>(action: &'static str, p: &'p Utf8Path) -> impl FnOnce(io::Error) -> RecordError + 'p {
        move |source| RecordError::Io { path: p.to_owned(), action, source }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_str().is_empty() => d.to_owned(),
        _ => Utf8PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    let lock_path = Utf8PathBuf::from(format!("{path}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open lock file", &lock_path))?;
    lock.lock().map_err(io_err("lock", &lock_path))?;

    let (mut ds, mode) = match read(path) {
        Ok(ds) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io_err("read metadata of", path))?.permissions().mode();
            (ds, mode)
        }
        Err(RecordError::Missing { .. }) => (Dataset::new(), 0o644),
        Err(e) => return Err(e),
    };
    let (quads, value) = make(&ds);
    ds.extend(quads);

    let mut tmp = tempfile::Builder::new()
        .prefix(".rtm-record-")
        .tempfile_in(&dir)
        .map_err(io_err("create a temporary file in", &dir))?;
    write_trig(&ds, tmp.as_file_mut()).map_err(io_err("write", tmp_path(&tmp).as_deref().unwrap_or(path)))?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err("set permissions of", path))?;
    }
    tmp.as_file().sync_all().map_err(io_err("sync", path))?;
    tmp.persist(path).map_err(|e| RecordError::Io { path: path.to_owned(), action: "replace", source: e.error })?;
    // The rename is durable only once the directory entry is.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    drop(lock);
    Ok(value)
}

fn tmp_path(tmp: &tempfile::NamedTempFile) -> Option<Utf8PathBuf> {
    Utf8PathBuf::from_path_buf(tmp.path().to_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RDFLIB_STYLE: &str = r#"@prefix rtm: <http://example.org/ontology/rtm#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

<http://example.org/g> {
    <urn:a> a rtm:DockerImage ;
        rtm:imageLabel """multi
line "quoted" \\ label"""@en ;
        rtm:n 3 ;
        rtm:b [ rtm:c "x" ] .
}

{
    <urn:b> rtm:t "2025-01-02T03:04:05+00:00"^^xsd:dateTime .
}
"#;

    #[test]
    fn round_trips_every_quad() {
        let ds = parse(RDFLIB_STYLE.as_bytes(), Utf8Path::new("x.trig")).unwrap();
        assert_eq!(ds.iter().count(), 6);
        let text = to_trig_string(&ds);
        let again = parse(text.as_bytes(), Utf8Path::new("y.trig")).unwrap();
        assert_eq!(ds, again, "anonymous nodes keep their labels");
        assert_eq!(to_trig_string(&again), text, "writing is byte-stable");
        let idx = ds.index();
        let label = idx.object(&Term::iri("urn:a"), "http://example.org/ontology/rtm#imageLabel").unwrap();
        assert_eq!(label.as_literal(), Some("multi\nline \"quoted\" \\ label"));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = parse("<urn:a> <urn:b> <urn:c> .\n<urn:a> <urn:b> \"open .\n".as_bytes(), Utf8Path::new("bad.trig"))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("record bad.trig is not valid TriG: line 2, column"), "{text}");
    }
}
