//! `gust functions list|get|delete`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use super::{block_on, output};
use crate::client::{encode_label, Client};
use crate::ConnectArgs;

#[derive(Debug, Subcommand)]
pub enum FunctionsCommand {
    /// List all functions.
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show one function's configuration and tags.
    Get {
        /// Function name or ARN.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Delete a function and its code.
    Delete {
        /// Function name or ARN.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub fn run(command: FunctionsCommand) -> Result<()> {
    match command {
        FunctionsCommand::List { connect } => block_on(list(connect))?,
        FunctionsCommand::Get { name, connect } => block_on(get(name, connect))?,
        FunctionsCommand::Delete { name, connect } => block_on(delete(name, connect))?,
    }
}

async fn list(connect: ConnectArgs) -> Result<()> {
    let client = Client::connect(&connect)?;
    let mut functions: Vec<Value> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let query = match &marker {
            Some(m) => format!("Marker={}", encode_label(m)),
            None => String::new(),
        };
        let page = client
            .call("GET", "/2015-03-31/functions", &query, None)
            .await?;
        functions.extend(page["Functions"].as_array().cloned().unwrap_or_default());
        match page["NextMarker"].as_str() {
            Some(next) => marker = Some(next.to_owned()),
            None => break,
        }
    }
    if connect.json {
        return output::json(&serde_json::json!({ "Functions": functions }));
    }
    if functions.is_empty() {
        println!("no functions");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| {
            [
                "FunctionName",
                "Runtime",
                "MemorySize",
                "Timeout",
                "State",
                "LastModified",
            ]
            .iter()
            .map(|k| output::cell(&f[*k]))
            .collect()
        })
        .collect();
    output::table(
        &[
            "NAME",
            "RUNTIME",
            "MEMORY",
            "TIMEOUT",
            "STATE",
            "LAST MODIFIED",
        ],
        &rows,
    );
    Ok(())
}

async fn get(name: String, connect: ConnectArgs) -> Result<()> {
    let client = Client::connect(&connect)?;
    let function = client
        .call(
            "GET",
            &format!("/2015-03-31/functions/{}", encode_label(&name)),
            "",
            None,
        )
        .await?;
    if connect.json {
        return output::json(&function);
    }
    output::function_details(&function["Configuration"]);
    if let Some(tags) = function["Tags"].as_object().filter(|t| !t.is_empty()) {
        println!("Tags");
        for (key, value) in tags {
            println!("  {key}={}", output::cell(value));
        }
    }
    Ok(())
}

async fn delete(name: String, connect: ConnectArgs) -> Result<()> {
    let client = Client::connect(&connect)?;
    client
        .call(
            "DELETE",
            &format!("/2015-03-31/functions/{}", encode_label(&name)),
            "",
            None,
        )
        .await?;
    if connect.json {
        return output::json(&serde_json::json!({ "Deleted": name }));
    }
    println!("deleted {name}");
    Ok(())
}
