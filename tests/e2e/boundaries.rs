//! Architecture invariants that a reviewer would otherwise have to remember.

use object::{Object, ObjectSymbol, SymbolKind};

use crate::support::*;

/// Names of the code and data symbols of an executable (static and dynamic tables),
/// mangled. File symbols (names of object files) are left out: they name what was offered
/// to the linker, not what it kept.
fn symbols(path: &str) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() != SymbolKind::File)
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect()
}

/// The ingest binary runs on the isolated server: it must carry no network client code. None
/// of its symbols names an HTTP or SMTP client; fetch and ferry-mail, built from the same
/// workspace, do, which shows that the check can see them. (Mail leaves through ferry-mail,
/// a program of its own that ingest runs.)
#[test]
fn ingest_carries_no_network_client() {
    let clients = ["reqwest", "hyper", "rustls", "h2..proto", "tokio", "lettre", "SmtpTransport"];
    let fetch = symbols(&FETCH);
    assert!(fetch.len() > 1000, "fetch has a symbol table");
    assert!(fetch.iter().any(|s| s.contains("reqwest")), "the check cannot see the HTTP client in fetch");
    let mail = symbols(&MAIL);
    assert!(mail.iter().any(|s| s.contains("lettre")), "the check cannot see the SMTP client in ferry-mail");
    // The managed computers' client reads its point from a folder or share: no network client either.
    for (program, path) in [("ingest", &*INGEST), ("ferry-client", &*CLIENT)] {
        let symbols = symbols(path);
        assert!(symbols.len() > 1000, "{program} has a symbol table");
        for name in clients {
            let found: Vec<&String> = symbols.iter().filter(|s| s.contains(name)).take(3).collect();
            assert!(found.is_empty(), "the {program} binary links {name}: {found:?}");
        }
    }
}
