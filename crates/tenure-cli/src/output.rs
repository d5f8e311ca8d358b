//! Printing records: a table for people, JSON for scripts.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// How to print.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Format {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Prints `value` as JSON, or `rows` under `header` as a table.
pub fn print<T: Serialize>(format: Format, value: &T, header: &[&str], rows: Vec<Vec<String>>) {
    if format.json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("tenure: cannot print JSON: {e}"),
        }
        return;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints key-value pairs as a two-column table, or `value` as JSON.
pub fn print_record<T: Serialize>(format: Format, value: &T, fields: Vec<(&str, String)>) {
    let rows = fields
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v])
        .collect();
    print(format, value, &["field", "value"], rows);
}
