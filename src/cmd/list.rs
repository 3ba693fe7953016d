//! `rtm-compute list` and `rtm-compute show`: what is recorded and what has been verified, from a
//! TriG record or from Flexo, as text or as JSON of one documented schema.

use serde_json::json;

use crate::catalog::{self, Entry, LIST_SCHEMA};
use crate::cli::{ListArgs, ShowArgs};
use crate::error::{EXIT_OK, Error};
use crate::witness::{Selector, WitnessError};

pub fn list(args: ListArgs) -> Result<u8, Error> {
    let ds = super::read_witnesses(&args.source)?;
    let entries = catalog::catalog(&ds);
    if args.json {
        return super::print_json(&json!({
            "schema": LIST_SCHEMA,
            "witnesses": entries.iter().map(catalog::summary_json).collect::<Vec<_>>(),
        }))
        .map(|()| EXIT_OK);
    }
    let label_width = entries.iter().map(|e| label(e).chars().count()).max().unwrap_or(5).clamp(5, 40);
    let mut text =
        format!("{:<12}  {:<label_width$}  {:<12}  {:<20}  VERIFIED\n", "DIGEST", "LABEL", "COMMIT", "BUILT");
    for e in &entries {
        let w = &e.witness;
        let verified = match e.latest() {
            Some(v) => format!(
                "{} {}{}",
                super::paint(if v.passed { "passed" } else { "FAILED" }, v.passed),
                v.at.map_or("-".to_owned(), |t| t.to_xsd()),
                v.method.as_deref().map_or(String::new(), |m| format!(" ({m})"))
            ),
            None => "never".to_owned(),
        };
        let commit = w.commit().map_or("-".to_owned(), |c| c[..12].to_owned());
        let built = w.generated_at.map_or("-".to_owned(), |t| t.to_xsd().chars().take(19).collect::<String>() + "Z");
        let shown: String = label(e).chars().take(label_width).collect();
        text.push_str(&format!(
            "{}  {shown:<label_width$}  {commit:<12}  {built:<20}  {verified}\n",
            w.content_hash.short()
        ));
    }
    super::print(&text)?;
    Ok(EXIT_OK)
}

/// The first label on one line (labels written by hand may hold newlines).
fn label(e: &Entry) -> String {
    e.witness.labels.first().map_or("-".to_owned(), |l| l.replace(['\n', '\r', '\t'], " "))
}

pub fn show(args: ShowArgs) -> Result<u8, Error> {
    let ds = super::read_witnesses(&args.source)?;
    let selector = if args.witness.starts_with("urn:") || args.witness.contains("://") {
        Selector::Iri(args.witness.clone())
    } else {
        Selector::Digest(args.witness.clone())
    };
    // Selection has one set of rules (and messages), whichever command asks.
    let chosen = crate::witness::select(&ds, &selector)?;
    let entry = catalog::catalog(&ds)
        .into_iter()
        .find(|e| e.witness.iri == chosen.iri)
        .ok_or(WitnessError::NotFound { selector: selector.to_string(), images: 0 })?;
    if args.json {
        return super::print_json(&catalog::detail_json(&entry)).map(|()| EXIT_OK);
    }
    super::print(&detail_text(&entry))?;
    Ok(EXIT_OK)
}

fn detail_text(e: &Entry) -> String {
    let w = &e.witness;
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<17}{v}\n"));
    line("image", w.iri.clone());
    line("digest", w.content_hash.to_string());
    line("labels", if w.labels.is_empty() { "-".into() } else { w.labels.join(", ") });
    line("gitRef", or_dash(w.git_ref.as_deref()));
    line("built", w.generated_at.map_or("-".into(), |t| t.to_xsd()));
    line("dockerfileHash", or_dash(w.dockerfile_hash.as_deref()));
    line("buildContextHash", or_dash(w.build_context_hash.as_deref()));
    if let Some(c) = &w.context_path {
        line("buildContextPath", c.clone());
    }
    line("baseImageDigest", w.base_image_digest.as_ref().map_or("-".into(), ToString::to_string));
    match (w.source_date_epoch, &w.normalizer) {
        (Some(sde), Some(n)) => line("normalised", format!("to source date {sde} by {n}")),
        (Some(sde), None) => line("normalised", format!("to source date {sde}")),
        _ => line("normalised", "no (the builder's own digest)".into()),
    }
    for (i, l) in w.layers.iter().enumerate() {
        line(if i == 0 { "layers" } else { "" }, format!("#{i} {}  {}", l.diff_id, l.created_by.trim()));
    }
    line("registryRef", or_dash(w.registry_ref.as_deref()));
    line("flexoRecord", or_dash(w.flexo_record.as_deref()));
    s.push_str(&format!("verifications ({}):\n", e.verifications.len()));
    for v in &e.verifications {
        s.push_str(&format!(
            "  {}  {}{}  {}\n",
            v.at.map_or("-".into(), |t| t.to_xsd()),
            super::paint(if v.passed { "passed" } else { "FAILED" }, v.passed),
            v.method.as_deref().map_or(String::new(), |m| format!(" ({m})")),
            v.iri
        ));
        if let Some(d) = &v.description {
            s.push_str(&format!("      {d}\n"));
        }
    }
    s.push_str(&format!("runs ({}):\n", e.runs.len()));
    for r in &e.runs {
        s.push_str(&format!(
            "  {}  container {}  at {}  by {}\n",
            r.at.map_or("-".into(), |t| t.to_xsd()),
            r.id,
            r.location.as_deref().unwrap_or("-"),
            r.operator.as_deref().unwrap_or("-")
        ));
    }
    s
}
