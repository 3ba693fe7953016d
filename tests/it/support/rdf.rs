//! Reads records with an independent RDF engine (Oxigraph), so that what the tool writes is
//! checked by a parser that is not its own.

use std::collections::BTreeMap;
use std::path::Path;

use oxigraph::io::RdfFormat;
use oxigraph::model::Term;
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;

pub const PREFIXES: &str = "PREFIX rtm: <http://example.org/ontology/rtm#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX earl: <http://www.w3.org/ns/earl#>
PREFIX dcterms: <http://purl.org/dc/terms/>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
";

/// A record loaded into an in-memory store.
pub struct Record {
    pub store: Store,
}

impl Record {
    #[track_caller]
    pub fn load(path: impl AsRef<Path>) -> Record {
        let path = path.as_ref();
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read record {}: {e}", path.display()));
        let store = Store::new().unwrap();
        store
            .load_from_slice(RdfFormat::TriG, &text)
            .unwrap_or_else(|e| panic!("record {} is not TriG that Oxigraph reads: {e}", path.display()));
        Record { store }
    }

    /// Runs a SELECT (with the record prefixes) and returns each row as variable → value text
    /// (IRIs bare, literals as their lexical form).
    #[track_caller]
    pub fn select(&self, query: &str) -> Vec<BTreeMap<String, String>> {
        let q = format!("{PREFIXES}{query}");
        let results = SparqlEvaluator::new()
            .parse_query(&q)
            .unwrap_or_else(|e| panic!("bad test query: {e}\n{q}"))
            .on_store(&self.store)
            .execute()
            .unwrap();
        let QueryResults::Solutions(solutions) = results else { panic!("not a SELECT: {q}") };
        solutions
            .map(|s| {
                let s = s.unwrap();
                s.iter()
                    .map(|(v, t)| {
                        let text = match t {
                            Term::NamedNode(n) => n.as_str().to_owned(),
                            Term::BlankNode(b) => format!("_:{}", b.as_str()),
                            Term::Literal(l) => l.value().to_owned(),
                            #[allow(unreachable_patterns)]
                            other => other.to_string(),
                        };
                        (v.as_str().to_owned(), text)
                    })
                    .collect()
            })
            .collect()
    }

    /// The values of one variable over all rows, sorted.
    #[track_caller]
    pub fn values(&self, query: &str, var: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.select(query).into_iter().map(|row| row.get(var).cloned().unwrap_or_default()).collect();
        v.sort();
        v
    }

    /// Every quad as N-Quads lines, sorted (for comparing whole records).
    pub fn nquads(&self) -> Vec<String> {
        let mut v: Vec<String> = self.store.iter().map(|q| q.unwrap().to_string()).collect();
        v.sort();
        v
    }
}
