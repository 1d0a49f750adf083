//! End-to-end tests: the real `fetch` and `ingest` binaries against real parts (a loopback
//! HTTP server, SQLite files, zip files, the stock `minisign` and `unzip` tools). One module
//! per property; fixtures are generated at test time and named after what they break.

mod support;

mod approvals;
mod audit;
mod boundaries;
mod bundle_contents;
mod catalog_refusals;
mod check;
mod client;
mod computers;
mod crash;
mod delta;
mod downloads;
mod exchange;
mod freshness;
mod groups;
mod hostile_property;
mod journey;
mod json_output;
mod keys;
mod large_archives;
mod locations;
mod long_paths;
mod manifest_refusals;
mod notify;
mod output_paths;
mod point_tampering;
mod progress;
mod publish;
mod register;
mod replay_and_rollback;
mod reports;
mod revisions;
mod rotation;
mod rules;
mod samples;
mod signature_refusals;
mod special_files;
mod thresholds;
mod tidy;
mod tls;
mod transfer_integrity;
mod volumes;
mod watch;
mod winget;
mod wsusscn2;
