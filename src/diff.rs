//! Explaining why two images differ: the config fields, the first layer that differs and the
//! instruction that made it, and the files in that layer (path, kind, size, mode, owner, mtime,
//! link, sha256).
//!
//! Invariant: a report is computed from what the images are (their saved config bytes and layer
//! tars), never from names or tags; two images with the same config digest give an empty report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::archive::SavedImage;
use crate::docker::{self, ImageDigest};
use crate::error::Error;
use crate::layer::{self, Entry};
use crate::normalize::NormalizeError;
use crate::process::Program;
use crate::witness::Layer;

/// At most this many differing files are listed in text (all of them in JSON).
const TEXT_FILE_LIMIT: usize = 20;

/// One config field whose value differs (`null` when absent on one side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    pub path: String,
    pub a: Value,
    pub b: Value,
}

/// The first layer position where two images differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDiff {
    pub index: usize,
    pub a: Option<Layer>,
    pub b: Option<Layer>,
}

impl LayerDiff {
    /// The instruction that made the differing layer (from whichever side has one).
    pub fn instruction(&self) -> &str {
        [&self.b, &self.a].into_iter().flatten().map(|l| l.created_by.as_str()).find(|s| !s.is_empty()).unwrap_or("")
    }
}

/// One file that differs inside the first differing layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    /// `None` when the file is only in the other image.
    pub a: Option<Entry>,
    pub b: Option<Entry>,
}

impl FileDiff {
    /// The attributes that differ, as `name: a → b`.
    pub fn changes(&self) -> Vec<String> {
        let (Some(a), Some(b)) = (&self.a, &self.b) else {
            return vec![if self.a.is_some() { "only in A".into() } else { "only in B".into() }];
        };
        let mut out = Vec::new();
        let mut field = |name: &str, x: String, y: String| {
            if x != y {
                out.push(format!("{name}: {x} → {y}"));
            }
        };
        field("kind", a.kind.to_string(), b.kind.to_string());
        field("size", a.size.to_string(), b.size.to_string());
        field("mode", format!("{:o}", a.mode), format!("{:o}", b.mode));
        field("owner", format!("{}:{}", a.uid, a.gid), format!("{}:{}", b.uid, b.gid));
        field("mtime", a.mtime.to_string(), b.mtime.to_string());
        field("link", a.link.clone(), b.link.clone());
        field("sha256", a.sha256.clone().unwrap_or_default(), b.sha256.clone().unwrap_or_default());
        out
    }
}

/// Why two images differ.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub config: Vec<FieldDiff>,
    pub layer: Option<LayerDiff>,
    pub files: Vec<FileDiff>,
    /// False when only the recorded layer list was available (the recorded image is not local).
    pub files_compared: bool,
    /// The digests differ but the layers are the same, and the recorded config is not here to
    /// compare field by field.
    pub config_differs_unseen: bool,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.layer.is_none() && self.files.is_empty() && !self.config_differs_unseen
    }

    /// One line of plain words, for an assertion's `earl:result`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.layer {
            parts.push(format!("first differing layer is #{} made by `{}`", l.index, l.instruction().trim()));
        }
        if !self.files.is_empty() {
            let names: Vec<String> = self.files.iter().take(5).map(|f| format!("/{}", f.path)).collect();
            let more = if self.files.len() > 5 { format!(" and {} more", self.files.len() - 5) } else { String::new() };
            parts.push(format!("files that differ: {}{more}", names.join(", ")));
        }
        let fields: Vec<&str> =
            self.config.iter().map(|f| f.path.as_str()).filter(|p| !p.starts_with("rootfs.")).collect();
        if !fields.is_empty() {
            parts.push(format!("config fields that differ: {}", fields.join(", ")));
        }
        if self.config_differs_unseen {
            parts.push(UNSEEN_CONFIG.to_owned());
        }
        parts.join("; ")
    }

    /// The report as text for a person.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if self.is_empty() {
            s.push_str("the images are identical\n");
            return s;
        }
        if let Some(l) = &self.layer {
            let id = |x: &Option<Layer>| x.as_ref().map_or("(none)".to_owned(), |l| l.diff_id.to_string());
            let _ = writeln!(s, "first differing layer: #{}  {}", l.index, l.instruction().trim());
            let _ = writeln!(s, "  A {}\n  B {}", id(&l.a), id(&l.b));
        }
        if !self.files.is_empty() {
            let _ = writeln!(s, "files that differ in that layer ({}):", self.files.len());
            for f in self.files.iter().take(TEXT_FILE_LIMIT) {
                let _ = writeln!(s, "  /{}  {}", f.path, f.changes().join(", "));
            }
            if self.files.len() > TEXT_FILE_LIMIT {
                let _ = writeln!(s, "  … and {} more (see --json)", self.files.len() - TEXT_FILE_LIMIT);
            }
        } else if self.layer.is_some() && !self.files_compared {
            s.push_str("the recorded image is not available locally, so its files cannot be compared\n");
        }
        if self.config_differs_unseen {
            let _ = writeln!(s, "{UNSEEN_CONFIG}");
        }
        if !self.config.is_empty() {
            let _ = writeln!(s, "config fields that differ ({}):", self.config.len());
            for f in &self.config {
                let _ = writeln!(s, "  {}: {} → {}", f.path, f.a, f.b);
            }
        }
        s
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let entry = |e: &Option<Entry>| {
            e.as_ref().map_or(Value::Null, |e| {
                json!({ "kind": e.kind.to_string(), "size": e.size, "mode": format!("{:o}", e.mode), "uid": e.uid, "gid": e.gid,
                        "mtime": e.mtime, "link": e.link, "sha256": e.sha256 })
            })
        };
        let layer = |l: &Option<Layer>| {
            l.as_ref().map_or(Value::Null, |l| json!({ "diffId": l.diff_id.as_str(), "createdBy": l.created_by }))
        };
        json!({
            "identical": self.is_empty(),
            "summary": self.summary(),
            "firstDifferingLayer": self.layer.as_ref().map(|l| json!({
                "index": l.index, "instruction": l.instruction(), "a": layer(&l.a), "b": layer(&l.b)
            })),
            "filesCompared": self.files_compared,
            "configDiffersUnseen": self.config_differs_unseen,
            "files": self.files.iter().map(|f| json!({ "path": f.path, "a": entry(&f.a), "b": entry(&f.b), "changes": f.changes() })).collect::<Vec<_>>(),
            "config": self.config.iter().map(|f| json!({ "path": f.path, "a": f.a, "b": f.b })).collect::<Vec<_>>(),
        })
    }
}

/// Compares two local images fully: config, layers, and the files of the first differing layer.
pub fn compare_images(program: &Program, a: &str, b: &str) -> Result<Report, Error> {
    let tmp = tempfile::Builder::new()
        .prefix("rtm-diff-")
        .tempdir()
        .map_err(|source| NormalizeError::Io { what: "create a temporary directory".into(), source })?;
    let dir = camino::Utf8Path::from_path(tmp.path()).expect("temporary paths are UTF-8");
    let (pa, pb) = (dir.join("a.tar"), dir.join("b.tar"));
    docker::save(program, a, &pa)?;
    docker::save(program, b, &pb)?;
    let (sa, sb) = (
        SavedImage::open(&pa).map_err(NormalizeError::Archive)?,
        SavedImage::open(&pb).map_err(NormalizeError::Archive)?,
    );
    if sa.config_bytes == sb.config_bytes {
        // The same config bytes are the same image: its diff_ids pin every layer.
        return Ok(Report { files_compared: true, ..Report::default() });
    }
    let mut report = Report { config: diff_json(&sa.config, &sb.config), files_compared: true, ..Report::default() };
    report.layer = first_layer_diff(&layers_of(&sa), &layers_of(&sb));
    if let Some(l) = &report.layer
        && l.index < sa.layer_count()
        && l.index < sb.layer_count()
    {
        let read = |s: &SavedImage| -> Result<Vec<Entry>, Error> {
            let tar = s
                .layer_tar(l.index)
                .map_err(|source| NormalizeError::Io { what: format!("read layer {}", l.index), source })?;
            Ok(layer::entries(tar)
                .map_err(|source| NormalizeError::Io { what: format!("list layer {}", l.index), source })?)
        };
        report.files = diff_entries(&read(&sa)?, &read(&sb)?);
    }
    Ok(report)
}

/// What a report says when only the config can differ and it cannot be read.
const UNSEEN_CONFIG: &str = "the layers are the same, so the image config differs (the recorded image is not local, so its fields cannot be shown)";

/// Compares a recorded layer list with a rebuilt one, when the recorded image is not local; the
/// caller knows the digests differ.
pub fn compare_layers(recorded: &[Layer], rebuilt: &[Layer]) -> Report {
    let layer = first_layer_diff(recorded, rebuilt);
    Report { config_differs_unseen: layer.is_none(), layer, ..Report::default() }
}

fn layers_of(s: &SavedImage) -> Vec<Layer> {
    let instructions = s.layer_instructions();
    s.diff_ids()
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            ImageDigest::parse(d)
                .map(|diff_id| Layer { diff_id, created_by: instructions.get(i).cloned().unwrap_or_default() })
        })
        .collect()
}

/// The first index where the diff_ids differ (or one list ends).
pub fn first_layer_diff(a: &[Layer], b: &[Layer]) -> Option<LayerDiff> {
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i).map(|l| &l.diff_id) != b.get(i).map(|l| &l.diff_id))
        .map(|index| LayerDiff { index, a: a.get(index).cloned(), b: b.get(index).cloned() })
}

/// Entries that differ between two layer listings, by path.
pub fn diff_entries(a: &[Entry], b: &[Entry]) -> Vec<FileDiff> {
    let by_path = |v: &[Entry]| -> BTreeMap<String, Entry> {
        v.iter().map(|e| (e.path.trim_start_matches("./").to_owned(), e.clone())).collect()
    };
    let (ma, mb) = (by_path(a), by_path(b));
    let paths: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    paths
        .into_iter()
        .filter(|p| ma.get(*p) != mb.get(*p))
        .map(|p| FileDiff { path: p.trim_end_matches('/').to_owned(), a: ma.get(p).cloned(), b: mb.get(p).cloned() })
        .collect()
}

/// Leaf-level differences between two JSON documents, as dotted paths.
pub fn diff_json(a: &Value, b: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldDiff>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{path}[{i}]"), x.get(i).unwrap_or(&Value::Null), y.get(i).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(FieldDiff { path: path.to_owned(), a: a.clone(), b: b.clone() }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64, sha: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: '0',
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            link: String::new(),
            sha256: Some(sha.into()),
        }
    }

    #[test]
    fn json_differences_are_dotted_paths() {
        let a = json!({"config": {"Env": ["A=1", "B=2"], "Cmd": ["x"]}, "created": "t1", "os": "linux"});
        let b = json!({"config": {"Env": ["A=1"], "Cmd": ["x"]}, "created": "t2", "os": "linux", "extra": true});
        let d: Vec<String> = diff_json(&a, &b).iter().map(|f| format!("{}: {} → {}", f.path, f.a, f.b)).collect();
        assert_eq!(d, ["config.Env[1]: \"B=2\" → null", "created: \"t1\" → \"t2\"", "extra: null → true"]);
    }

    #[test]
    fn files_and_layers() {
        let a = [entry("out/", 0, ""), entry("out/id", 37, "aa"), entry("gone", 1, "cc")];
        let b = [entry("out/", 0, ""), entry("out/id", 37, "bb"), entry("new", 1, "dd")];
        let d = diff_entries(&a, &b);
        let lines: Vec<String> = d.iter().map(|f| format!("{} {}", f.path, f.changes().join(","))).collect();
        assert_eq!(lines, ["gone only in A", "new only in B", "out/id sha256: aa → bb"]);

        let l = |c: char, by: &str| Layer {
            diff_id: ImageDigest::parse(&c.to_string().repeat(64)).unwrap(),
            created_by: by.into(),
        };
        assert_eq!(first_layer_diff(&[l('a', "FROM"), l('b', "RUN x")], &[l('a', "FROM"), l('b', "RUN x")]), None);
        let first = first_layer_diff(&[l('a', "FROM"), l('b', "RUN x")], &[l('a', "FROM"), l('c', "RUN x")]).unwrap();
        assert_eq!((first.index, first.instruction()), (1, "RUN x"));
        let same = compare_layers(&[l('a', "FROM")], &[l('a', "FROM")]);
        assert!(
            !same.is_empty() && same.config_differs_unseen,
            "equal layers with different digests point at the config"
        );
        assert!(same.summary().starts_with("the layers are the same, so the image config differs"));
        let report = Report { layer: Some(first), files: d, ..Report::default() };
        assert_eq!(
            report.summary(),
            "first differing layer is #1 made by `RUN x`; files that differ: /gone, /new, /out/id"
        );
    }
}
