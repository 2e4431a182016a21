//! Human-readable output: aligned tables and key/value listings.

use serde_json::Value;

/// Prints rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A JSON value as a table cell.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints `key: value` lines for a function configuration.
pub fn function_details(config: &Value) {
    let fields = [
        ("Name", "FunctionName"),
        ("ARN", "FunctionArn"),
        ("Runtime", "Runtime"),
        ("Handler", "Handler"),
        ("Memory (MB)", "MemorySize"),
        ("Timeout (s)", "Timeout"),
        ("Code size", "CodeSize"),
        ("Code SHA-256", "CodeSha256"),
        ("State", "State"),
        ("Last update", "LastUpdateStatus"),
        ("Last modified", "LastModified"),
        ("Revision", "RevisionId"),
        ("Description", "Description"),
    ];
    for (label, key) in fields {
        println!("{label:<14} {}", cell(&config[key]));
    }
    println!(
        "{:<14} {}",
        "/tmp (MB)",
        cell(&config["EphemeralStorage"]["Size"])
    );
    if let Some(vars) = config["Environment"]["Variables"].as_object() {
        println!("Environment");
        for (key, value) in vars {
            println!("  {key}={}", cell(value));
        }
    }
}

/// Prints JSON for scripts.
pub fn json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
