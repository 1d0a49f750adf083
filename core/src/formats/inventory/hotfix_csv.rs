//! `Get-HotFix | Export-Csv` as PowerShell writes it: Windows PowerShell 5.1 puts a
//! `#TYPE System.Management.ManagementObject#root\cimv2\Win32_QuickFixEngineering` line
//! first, PowerShell 7 does not; every property of Win32_QuickFixEngineering follows as a
//! quoted column, in an order that differs between versions. Columns are found by name:
//! `HotFixID` (required), the computer from `CSName`, `PSComputerName`, `Source` or
//! `__SERVER`, `Description` and `InstalledOn`.
//!
//! `Get-HotFix -ComputerName A,B | Export-Csv` lists several computers in one file: each
//! becomes an inventory of its own. `InstalledOn` is written in the exporting account's
//! culture (`1/10/2024 12:00:00 AM`, `10.01.2024 00:00:00`, `2024/01/10 0:00:00`): a date
//! is kept only where its form says which number is the month.

use std::path::Path;

use super::{Hotfix, Inventory, InventoryFormat, at_most, kb, optional_text, refuse};
use crate::base::clock::Date;
use crate::base::error::Result;
use crate::base::names::ComputerName;

/// Whether `body` looks like a `Get-HotFix` export: a `#TYPE` line naming the class, or a
/// header with a `HotFixID` column.
pub fn looks_like(body: &str) -> bool {
    let first = body.lines().next().unwrap_or("");
    if first.starts_with("#TYPE") {
        return first.contains("Win32_QuickFixEngineering");
    }
    first.split([',', ';', '\t']).any(|c| c.trim().trim_matches('"').eq_ignore_ascii_case("HotFixID"))
}

/// The columns that name the computer, in the order they are believed.
const COMPUTER_COLUMNS: [&str; 4] = ["CSName", "PSComputerName", "Source", "__SERVER"];

/// Reads a `Get-HotFix` export: one inventory per computer it names, in the order first named.
pub fn read(file: &Path, body: &str, computer: Option<&ComputerName>) -> Result<Vec<Inventory>> {
    let mut skipped_lines = 0;
    let mut body = body;
    if body.starts_with("#TYPE") {
        body = body.split_once('\n').map_or("", |(_, rest)| rest);
        skipped_lines = 1;
    }
    // `Export-Csv -UseCulture` writes the culture's list separator (`;` in much of Europe).
    let header = body.lines().next().unwrap_or("");
    let delimiter = if header.matches(';').count() > header.matches(',').count() { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(body.as_bytes());
    // The line a record starts on, counted from its byte offset: the csv crate's own count
    // starts a record at the line break before it.
    let line_of = |pos: Option<&csv::Position>| {
        pos.map(|p| {
            let at = (p.byte() as usize).min(body.len());
            let before = body.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
            let breaks = body.as_bytes()[at..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .filter(|b| **b == b'\n')
                .count();
            before + breaks + 1 + skipped_lines
        })
    };
    let headers =
        reader.headers().map_err(|e| refuse(file, line_of(e.position()), "", format!("not CSV: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let Some(id_column) = column("HotFixID") else {
        return Err(refuse(file, Some(1 + skipped_lines), "HotFixID", "no such column: not a Get-HotFix export"));
    };
    let computer_columns: Vec<(usize, &str)> =
        COMPUTER_COLUMNS.iter().filter_map(|c| column(c).map(|i| (i, *c))).collect();
    let description = column("Description");
    let installed_on = column("InstalledOn");

    let mut out: Vec<Inventory> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(refuse(file, line_of(e.position()), "", format!("not CSV: {e}"))),
        }
        let line = line_of(record.position());
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let named = computer_columns.iter().map(|(i, c)| (cell(*i), *c)).find(|(v, _)| !v.is_empty());
        let name: ComputerName = match (named, computer) {
            (Some((value, col)), given) => {
                let name: ComputerName =
                    value.parse().map_err(|e: crate::base::error::Error| refuse(file, line, col, e.to_string()))?;
                if let Some(given) = given
                    && !given.as_str().eq_ignore_ascii_case(name.as_str())
                {
                    return Err(refuse(
                        file,
                        line,
                        col,
                        format!("the row is of computer {name}, not of {given} as --computer says"),
                    ));
                }
                name
            }
            (None, Some(given)) => given.clone(),
            (None, None) => {
                return Err(refuse(
                    file,
                    line,
                    "CSName",
                    "the row names no computer: give the computer's name with --computer",
                ));
            }
        };
        let id = cell(id_column);
        // Windows XP and Server 2003 list some components as "File 1": not an update.
        if id.eq_ignore_ascii_case("File 1") {
            continue;
        }
        let kb = kb(id).map_err(|reason| refuse(file, line, "HotFixID", reason))?;
        let description =
            optional_text(description.map(cell)).map_err(|reason| refuse(file, line, "Description", reason))?;
        let installed_on = installed_on.and_then(|i| culture_date(cell(i)));
        let index = match out.iter().position(|inv| inv.computer.as_str().eq_ignore_ascii_case(name.as_str())) {
            Some(i) => i,
            None => {
                let mut inv = Inventory::empty(name, InventoryFormat::HotfixCsv);
                inv.hotfixes = Some(Vec::new());
                out.push(inv);
                out.len() - 1
            }
        };
        let hotfixes = out[index].hotfixes.as_mut().expect("made with a list");
        if !hotfixes.iter().any(|h| h.kb == kb) {
            hotfixes.push(Hotfix { kb, description, installed_on });
            at_most(hotfixes.len(), "hotfixes").map_err(|reason| refuse(file, line, "HotFixID", reason))?;
        }
    }
    if out.is_empty() {
        match computer {
            // An export of a computer with no update installed is still a report of it.
            Some(given) => {
                let mut inv = Inventory::empty(given.clone(), InventoryFormat::HotfixCsv);
                inv.hotfixes = Some(Vec::new());
                out.push(inv);
            }
            None => {
                return Err(refuse(file, None, "", "no rows and no --computer: the file says nothing of any computer"));
            }
        }
    }
    Ok(out)
}

/// A date from `InstalledOn` in the exporting culture's form, where the form says which
/// number is the month: year first (`2024/01/10`, `2024-01-10`), day first with dots
/// (`10.01.2024`), month first with AM/PM (`1/10/2024 12:00:00 AM`, en-US), or slashes
/// where one number is over 12. Otherwise none: guessing would misdate every other update.
fn culture_date(cell: &str) -> Option<Date> {
    let date_part = cell.split_whitespace().next()?;
    let twelve_hour = cell.contains("AM") || cell.contains("PM");
    let parts: Vec<&str> = date_part.split(['/', '-', '.']).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(0)).collect();
    let (y, m, d) = if parts[0].len() == 4 {
        (n[0], n[1], n[2])
    } else if parts[2].len() == 4 {
        let separator = date_part.as_bytes()[parts[0].len()];
        if separator == b'.' {
            (n[2], n[1], n[0])
        } else if twelve_hour || n[1] > 12 {
            (n[2], n[0], n[1])
        } else if n[0] > 12 || n[0] == n[1] {
            (n[2], n[1], n[0])
        } else {
            return None;
        }
    } else {
        return None;
    };
    format!("{y:04}-{m:02}-{d:02}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape Windows PowerShell 5.1 writes (columns abridged in the middle).
    const PS51: &str = "#TYPE System.Management.ManagementObject#root\\cimv2\\Win32_QuickFixEngineering\r\n\
\"PSComputerName\",\"InstalledOn\",\"__GENUS\",\"__CLASS\",\"__SERVER\",\"Caption\",\"CSName\",\"Description\",\"FixComments\",\"HotFixID\",\"InstallDate\",\"InstalledBy\",\"Name\",\"ServicePackInEffect\",\"Status\"\r\n\
\"PC-0042\",\"1/10/2024 12:00:00 AM\",\"2\",\"Win32_QuickFixEngineering\",\"PC-0042\",\"http://support.microsoft.com/?kbid=5034122\",\"PC-0042\",\"Security Update\",\"\",\"KB5034122\",\"\",\"NT AUTHORITY\\SYSTEM\",\"\",\"\",\"\"\r\n\
\"PC-0043\",\"\",\"2\",\"Win32_QuickFixEngineering\",\"PC-0043\",\"\",\"PC-0043\",\"Update\",\"\",\"KB5034441\",\"\",\"\",\"\",\"\",\"\"\r\n";

    #[test]
    fn an_export_of_two_computers_gives_two_inventories() {
        let invs = read(Path::new("h.csv"), PS51, None).unwrap();
        assert_eq!(invs.len(), 2);
        assert_eq!(invs[0].computer.as_str(), "PC-0042");
        let h = &invs[0].hotfixes.as_ref().unwrap()[0];
        assert_eq!((h.kb.as_str(), h.installed_on.map(|d| d.to_string())), ("KB5034122", Some("2024-01-10".into())));
        assert!(looks_like(PS51));
    }

    #[test]
    fn a_computer_named_otherwise_is_refused_with_its_line() {
        let err = read(Path::new("h.csv"), PS51, Some(&"PC-0042".parse().unwrap())).unwrap_err().to_string();
        assert!(err.contains("line 4") && err.contains("PC-0043"), "{err}");
    }

    #[test]
    fn dates_are_kept_only_where_their_form_is_clear() {
        let d = |s: &str| culture_date(s).map(|d| d.to_string());
        assert_eq!(d("1/10/2024 12:00:00 AM"), Some("2024-01-10".into()));
        assert_eq!(d("10.01.2024 00:00:00"), Some("2024-01-10".into()));
        assert_eq!(d("2024/01/10 0:00:00"), Some("2024-01-10".into()));
        assert_eq!(d("25/01/2024 00:00:00"), Some("2024-01-25".into()));
        assert_eq!(d("01/02/2024 00:00:00"), None, "day or month first cannot be told");
        assert_eq!(d(""), None);
    }
}
