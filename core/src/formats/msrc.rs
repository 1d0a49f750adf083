//! MSRC security update documents in CVRF v3.0 XML, as Microsoft publishes one a month:
//! per KB, the CVEs it fixes, the highest severity per product, what it supersedes, whether
//! a restart is required and the build it brings. Remediations that name no KB (release
//! notes, Click-to-Run, package versions of Linux components, commits) are counted by kind
//! and skipped, never dropped silently.
//!
//! The document is read as a stream of XML events (quick-xml), under [`MAX_DOCUMENT_BYTES`]
//! and a nesting limit; quick-xml expands no entity a document defines, so entity expansion
//! cannot blow up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use quick_xml::events::Event;

use crate::base::error::{Error, Result};
use crate::formats::model::Severity;

/// The largest document read (the monthly documents are a few MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// Deeper nesting than any CVRF document has.
const MAX_DEPTH: usize = 64;

/// What a document says of one KB.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Kb {
    pub cves: BTreeSet<String>,
    /// The highest severity the document gives any CVE this KB fixes, per product name.
    pub severity: BTreeMap<String, Severity>,
    /// KB numbers it supersedes (the older documents' comma-separated form split).
    pub supersedes: BTreeSet<String>,
    /// "Yes", "No" or "Maybe", as the document says (the strongest when they differ).
    pub restart_required: Option<String>,
    pub fixed_builds: BTreeSet<String>,
    pub urls: BTreeSet<String>,
}

/// One CVRF document read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Document {
    /// `2024-Jan`.
    pub id: String,
    pub initial_release: Option<String>,
    pub current_release: Option<String>,
    pub vulnerabilities: usize,
    /// By KB number (digits only, without "KB").
    pub kbs: BTreeMap<String, Kb>,
    /// Vendor fixes that name no KB, counted by what they name instead.
    pub skipped: BTreeMap<String, usize>,
}

/// A remediation being read.
#[derive(Default)]
struct Remediation {
    vendor_fix: bool,
    description: String,
    url: String,
    supersedence: String,
    fixed_build: String,
    restart: String,
    products: Vec<String>,
}

/// A vulnerability being read.
#[derive(Default)]
struct Vulnerability {
    cve: String,
    /// Product id → severity (Threat Type "Severity").
    severities: BTreeMap<String, Severity>,
    remediations: Vec<Remediation>,
}

fn severity(text: &str) -> Option<Severity> {
    match text.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "important" => Some(Severity::Important),
        "moderate" => Some(Severity::Moderate),
        "low" => Some(Severity::Low),
        _ => None,
    }
}

/// "Yes" over "Maybe" over "No".
pub fn stronger_restart(a: Option<String>, b: &str) -> Option<String> {
    let rank = |s: &str| match s.to_ascii_lowercase().as_str() {
        "yes" => 3,
        "maybe" => 2,
        "no" => 1,
        _ => 0,
    };
    match a {
        Some(a) if rank(&a) >= rank(b) => Some(a),
        _ if b.is_empty() => None,
        _ => Some(b.to_string()),
    }
}

/// The KB number a remediation's description names: `5034122` or `KB5034122`.
fn kb_number(description: &str) -> Option<String> {
    let d = description.trim();
    let digits = d.strip_prefix("KB").or_else(|| d.strip_prefix("kb")).unwrap_or(d);
    (digits.len() >= 6 && digits.len() <= 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_string())
}

/// What a non-KB remediation names, for the count of skipped ones.
fn skipped_kind(description: &str) -> String {
    let d = description.trim();
    match d {
        "" => "(no description)".into(),
        "Release Notes" | "Click to Run" | "Commit" => d.into(),
        _ => "package version (Linux component)".into(),
    }
}

/// Reads a CVRF v3.0 XML document; `path` names it in refusals.
pub fn read_cvrf(path: &Path, bytes: &[u8]) -> Result<Document> {
    let refuse = |reason: String, at: u64| Error::Feed {
        file: path.to_path_buf(),
        line: Some(crate::formats::xml::line_of(bytes, at)),
        field: String::new(),
        reason,
    };
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge { path: path.to_path_buf(), limit: MAX_DOCUMENT_BYTES });
    }
    let bytes_without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Text is trimmed once whole, at the end of its element: trimming each piece around an
    // entity would eat the spaces beside it ("A &amp; B" would read "A&B").
    let mut reader = quick_xml::Reader::from_reader(bytes_without_bom);
    let mut doc = Document::default();
    let mut products: BTreeMap<String, String> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut product_id_attr: Option<String> = None;
    let mut vuln: Option<Vulnerability> = None;
    let mut remediation: Option<Remediation> = None;
    let mut threat: Option<(String, String, Vec<String>)> = None; // type, description, products
    let mut saw_root = false;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| refuse(format!("not well-formed XML: {e}"), at))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if stack.is_empty() {
                    if name != "cvrfdoc" {
                        return Err(refuse(format!("the root element is {name}, not a CVRF document (cvrfdoc)"), at));
                    }
                    saw_root = true;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse(format!("elements nested deeper than {MAX_DEPTH}"), at));
                }
                match name.as_str() {
                    "Vulnerability" => vuln = Some(Vulnerability::default()),
                    "Remediation" => {
                        let vendor_fix = e
                            .attributes()
                            .flatten()
                            .any(|a| a.key.local_name().as_ref() == "Type" && a.value.as_ref() == "Vendor Fix");
                        remediation = Some(Remediation { vendor_fix, ..Remediation::default() });
                    }
                    "Threat" => {
                        let kind = e
                            .attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == "Type")
                            .map(|a| a.value.to_string())
                            .unwrap_or_default();
                        threat = Some((kind, String::new(), Vec::new()));
                    }
                    "FullProductName" => {
                        product_id_attr = e
                            .attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == "ProductID")
                            .map(|a| a.value.to_string());
                    }
                    _ => {}
                }
                stack.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.into_inner()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                let name = r.into_inner();
                match crate::formats::xml::entity(&name) {
                    Some(c) => text.push(c),
                    None => return Err(refuse(format!("the entity &{name}; is not one XML defines"), at)),
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let value = std::mem::take(&mut text);
                let value = value.trim();
                let parent = stack.last().map(String::as_str).unwrap_or("");
                match (parent, name.as_str()) {
                    ("Identification", "ID") if doc.id.is_empty() => doc.id = value.to_string(),
                    ("DocumentTracking", "InitialReleaseDate") => doc.initial_release = Some(value.to_string()),
                    ("DocumentTracking", "CurrentReleaseDate") => doc.current_release = Some(value.to_string()),
                    (_, "FullProductName") => {
                        if let Some(id) = product_id_attr.take() {
                            products.insert(id, value.to_string());
                        }
                    }
                    ("Vulnerability", "CVE") => {
                        if let Some(v) = vuln.as_mut() {
                            v.cve = value.to_string();
                        }
                    }
                    ("Remediation", field) => {
                        if let Some(r) = remediation.as_mut() {
                            match field {
                                "Description" => r.description = value.to_string(),
                                "URL" => r.url = value.to_string(),
                                "Supercedence" => r.supersedence = value.to_string(),
                                "FixedBuild" => r.fixed_build = value.to_string(),
                                "RestartRequired" => r.restart = value.to_string(),
                                "ProductID" => r.products.push(value.to_string()),
                                _ => {}
                            }
                        }
                    }
                    ("Threat", field) => {
                        if let Some(t) = threat.as_mut() {
                            match field {
                                "Description" => t.1 = value.to_string(),
                                "ProductID" => t.2.push(value.to_string()),
                                _ => {}
                            }
                        }
                    }
                    (_, "Threat") => {
                        if let (Some((kind, description, ids)), Some(v)) = (threat.take(), vuln.as_mut())
                            && kind == "Severity"
                            && let Some(s) = severity(&description)
                        {
                            for id in ids {
                                let e = v.severities.entry(id).or_insert(s);
                                *e = (*e).min(s);
                            }
                        }
                    }
                    (_, "Remediation") => {
                        if let (Some(r), Some(v)) = (remediation.take(), vuln.as_mut()) {
                            v.remediations.push(r);
                        }
                    }
                    (_, "Vulnerability") => {
                        if let Some(v) = vuln.take() {
                            doc.vulnerabilities += 1;
                            record(&mut doc, &products, v);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(refuse(format!("the document ends inside <{open}>: cut short"), at));
                }
                break;
            }
            _ => {}
        }
    }
    if !saw_root {
        return Err(refuse("no CVRF document element".into(), 0));
    }
    Ok(doc)
}

/// A `{"Value": …}` wrapper, as MSRC's JSON gives most texts.
#[derive(Debug, Default, serde::Deserialize)]
struct Valued {
    #[serde(rename = "Value", default)]
    value: Option<serde_json::Value>,
}

impl Valued {
    fn text(&self) -> String {
        match &self.value {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct JsonThreat {
    #[serde(rename = "Type")]
    kind: Option<u32>,
    description: Valued,
    #[serde(rename = "ProductID")]
    product_ids: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct JsonRemediation {
    #[serde(rename = "Type")]
    kind: Option<u32>,
    description: Valued,
    #[serde(rename = "URL")]
    url: Option<String>,
    supercedence: Option<String>,
    fixed_build: Option<String>,
    restart_required: Valued,
    #[serde(rename = "ProductID")]
    product_ids: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct JsonVulnerability {
    #[serde(rename = "CVE")]
    cve: Option<String>,
    threats: Vec<JsonThreat>,
    remediations: Vec<JsonRemediation>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct JsonTracking {
    identification: Option<JsonIdentification>,
    initial_release_date: Option<String>,
    current_release_date: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct JsonIdentification {
    #[serde(rename = "ID")]
    id: Valued,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonDocument {
    document_tracking: JsonTracking,
    #[serde(default)]
    product_tree: serde_json::Value,
    #[serde(default)]
    vulnerability: Vec<JsonVulnerability>,
}

/// Every `{"ProductID": …, "Value": …}` of a product tree, at any depth (the flat list and
/// the branches).
fn json_products(tree: &serde_json::Value, into: &mut BTreeMap<String, String>) {
    match tree {
        serde_json::Value::Object(map) => {
            if let (Some(serde_json::Value::String(id)), Some(serde_json::Value::String(name))) =
                (map.get("ProductID"), map.get("Value"))
            {
                into.entry(id.clone()).or_insert_with(|| name.clone());
            }
            map.values().for_each(|v| json_products(v, into));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_products(v, into)),
        _ => {}
    }
}

/// Reads a CVRF v3.0 document in the JSON form MSRC's API also serves (the same fields as
/// the XML; a threat of type 3 is a severity, a remediation of type 2 a vendor fix); `path`
/// names it in refusals.
pub fn read_cvrf_json(path: &Path, bytes: &[u8]) -> Result<Document> {
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge { path: path.to_path_buf(), limit: MAX_DOCUMENT_BYTES });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let json: JsonDocument = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::Feed {
            file: path.to_path_buf(),
            line: Some(inner.line()),
            field: if field == "." { String::new() } else { field },
            reason: inner.to_string(),
        }
    })?;
    let mut products = BTreeMap::new();
    json_products(&json.product_tree, &mut products);
    let mut doc = Document {
        id: json.document_tracking.identification.map(|i| i.id.text()).unwrap_or_default(),
        initial_release: json.document_tracking.initial_release_date,
        current_release: json.document_tracking.current_release_date,
        ..Document::default()
    };
    for v in json.vulnerability {
        let mut vuln = Vulnerability { cve: v.cve.unwrap_or_default(), ..Vulnerability::default() };
        for t in v.threats.iter().filter(|t| t.kind == Some(3)) {
            if let Some(s) = severity(&t.description.text()) {
                for id in &t.product_ids {
                    let e = vuln.severities.entry(id.clone()).or_insert(s);
                    *e = (*e).min(s);
                }
            }
        }
        for r in v.remediations {
            vuln.remediations.push(Remediation {
                vendor_fix: r.kind == Some(2),
                description: r.description.text(),
                url: r.url.unwrap_or_default(),
                supersedence: r.supercedence.unwrap_or_default(),
                fixed_build: r.fixed_build.unwrap_or_default(),
                restart: r.restart_required.text(),
                products: r.product_ids,
            });
        }
        doc.vulnerabilities += 1;
        record(&mut doc, &products, vuln);
    }
    Ok(doc)
}

/// Reads a CVRF v3.0 document in either form, told apart by its first character.
pub fn read_cvrf_any(path: &Path, bytes: &[u8]) -> Result<Document> {
    let first = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes).iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') { read_cvrf_json(path, bytes) } else { read_cvrf(path, bytes) }
}

/// Adds what a vulnerability's vendor fixes say to the document's KBs.
fn record(doc: &mut Document, products: &BTreeMap<String, String>, v: Vulnerability) {
    for r in v.remediations.into_iter().filter(|r| r.vendor_fix) {
        let Some(kb) = kb_number(&r.description) else {
            *doc.skipped.entry(skipped_kind(&r.description)).or_default() += 1;
            continue;
        };
        let entry = doc.kbs.entry(kb).or_default();
        if !v.cve.is_empty() {
            entry.cves.insert(v.cve.clone());
        }
        for id in &r.products {
            if let Some(s) = v.severities.get(id) {
                let name = products.get(id).cloned().unwrap_or_else(|| format!("product {id}"));
                let e = entry.severity.entry(name).or_insert(*s);
                *e = (*e).min(*s);
            }
        }
        entry.supersedes.extend(r.supersedence.split([',', ';']).filter_map(kb_number));
        entry.restart_required = stronger_restart(entry.restart_required.take(), &r.restart);
        if !r.fixed_build.is_empty() {
            entry.fixed_builds.insert(r.fixed_build);
        }
        if !r.url.is_empty() {
            entry.urls.insert(r.url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realdata(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata/msrc-cvrf").join(name);
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the tests read the real documents there)", path.display()))
    }

    #[test]
    fn every_real_document_is_read_with_its_counts() {
        for (name, id, vulnerabilities, kbs, skipped) in [
            ("cvrfDocument-2024-Jan.xml", "2024-Jan", 85, 37, 81),
            ("cvrfDocument-2024-Feb.xml", "2024-Feb", 97, 46, 71),
            ("cvrfDocument-2018-Jan.xml", "2018-Jan", 63, 118, 68),
        ] {
            let doc = read_cvrf(Path::new(name), &realdata(name)).unwrap();
            assert_eq!(doc.id, id);
            assert_eq!(doc.vulnerabilities, vulnerabilities, "{name}");
            assert_eq!(doc.kbs.len(), kbs, "{name}");
            assert_eq!(doc.skipped.values().sum::<usize>(), skipped, "{name}: {:?}", doc.skipped);
            assert!(doc.kbs.values().all(|k| !k.cves.is_empty()), "{name}: a KB without a CVE");
        }
        let jan = read_cvrf(Path::new("2024-Jan"), &realdata("cvrfDocument-2024-Jan.xml")).unwrap();
        let kb = &jan.kbs["5034122"];
        assert!(kb.cves.len() > 10, "{kb:?}");
        assert!(kb.severity.values().any(|s| *s == Severity::Critical || *s == Severity::Important), "{kb:?}");
        assert_eq!(jan.initial_release.as_deref(), Some("2024-01-09T08:00:00"));
        let old = read_cvrf(Path::new("2018-Jan"), &realdata("cvrfDocument-2018-Jan.xml")).unwrap();
        assert!(old.kbs["4011622"].supersedes.contains("4011038"), "{:?}", old.kbs["4011622"]);
    }

    #[test]
    fn the_json_form_reads_as_the_xml_form() {
        let xml = r#"<cvrfdoc xmlns="http://www.icasi.org/CVRF/schema/cvrf/1.1" xmlns:vuln="http://www.icasi.org/CVRF/schema/vuln/1.1" xmlns:prod="http://www.icasi.org/CVRF/schema/prod/1.1">
<DocumentTracking><Identification><ID>2024-Jan</ID></Identification><InitialReleaseDate>2024-01-09T08:00:00</InitialReleaseDate></DocumentTracking>
<prod:ProductTree><prod:FullProductName ProductID="11568">Windows 10 Version 22H2 for x64-based Systems</prod:FullProductName></prod:ProductTree>
<vuln:Vulnerability><vuln:CVE>CVE-2024-20674</vuln:CVE>
<vuln:Threats><vuln:Threat Type="Severity"><vuln:Description>Critical</vuln:Description><vuln:ProductID>11568</vuln:ProductID></vuln:Threat></vuln:Threats>
<vuln:Remediations><vuln:Remediation Type="Vendor Fix"><vuln:Description>5034122</vuln:Description><vuln:URL>https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5034122</vuln:URL><vuln:Supercedence>5033372</vuln:Supercedence><vuln:ProductID>11568</vuln:ProductID><vuln:FixedBuild>10.0.19045.3930</vuln:FixedBuild><vuln:RestartRequired>Yes</vuln:RestartRequired></vuln:Remediation>
<vuln:Remediation Type="Vendor Fix"><vuln:Description>Release Notes</vuln:Description><vuln:ProductID>11568</vuln:ProductID></vuln:Remediation></vuln:Remediations>
</vuln:Vulnerability></cvrfdoc>"#;
        let json = r#"{"DocumentTracking":{"Identification":{"ID":{"Value":"2024-Jan"}},"InitialReleaseDate":"2024-01-09T08:00:00"},
 "ProductTree":{"Branch":[{"Items":[{"Items":[{"ProductID":"11568","Value":"Windows 10 Version 22H2 for x64-based Systems"}]}]}]},
 "Vulnerability":[{"CVE":"CVE-2024-20674",
   "Threats":[{"Type":3,"Description":{"Value":"Critical"},"ProductID":["11568"]},{"Type":1,"Description":{"Value":"Exploited:No"}}],
   "Remediations":[{"Type":2,"SubType":"Security Update","Description":{"Value":"5034122"},"URL":"https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5034122","Supercedence":"5033372","FixedBuild":"10.0.19045.3930","RestartRequired":{"Value":"Yes"},"ProductID":["11568"]},
                   {"Type":2,"Description":{"Value":"Release Notes"},"RestartRequired":{},"ProductID":["11568"]},
                   {"Type":3,"SubType":"5034122","ProductID":["11568"]}]}]}"#;
        let from_xml = read_cvrf(Path::new("d.xml"), xml.as_bytes()).unwrap();
        let from_json = read_cvrf_any(Path::new("d.json"), json.as_bytes()).unwrap();
        assert_eq!(from_json, from_xml);
        assert_eq!(from_json.kbs["5034122"].supersedes.iter().collect::<Vec<_>>(), ["5033372"]);
        assert_eq!(from_json.skipped["Release Notes"], 1);
        let broken = json.replace("\"CVE\":\"CVE-2024-20674\"", "\"CVE\":7");
        let e = read_cvrf_any(Path::new("d.json"), broken.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("d.json") && e.contains("Vulnerability[0].CVE"), "{e}");
    }

    #[test]
    fn hostile_documents_are_refused() {
        let not_cvrf = read_cvrf(Path::new("x.xml"), b"<html><body/></html>").unwrap_err().to_string();
        assert!(not_cvrf.contains("not a CVRF document"), "{not_cvrf}");
        let entity = b"<!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\">]><cvrfdoc><Vulnerability><CVE>&a;</CVE></Vulnerability></cvrfdoc>";
        let e = read_cvrf(Path::new("e.xml"), entity).unwrap_err().to_string();
        assert!(e.contains("&a;"), "a defined entity is never expanded: {e}");
        let deep = format!("<cvrfdoc>{}", "<x>".repeat(100));
        let e = read_cvrf(Path::new("d.xml"), deep.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("nested deeper"), "{e}");
        let broken = read_cvrf(Path::new("b.xml"), b"<cvrfdoc>\n<Vulnerability>\n</cvrfdoc>").unwrap_err().to_string();
        assert!(broken.contains("b.xml: line"), "{broken}");
        let cut = read_cvrf(Path::new("c.xml"), b"<cvrfdoc>\n<Vulnerability>\n<CVE>CVE-1").unwrap_err().to_string();
        assert!(cut.contains("c.xml: line 3") && cut.contains("cut short"), "{cut}");
    }
}
