//! `gust usage [--month YYYY-MM] [--json]`: the account's usage and its AWS-equivalent
//! price in a month, as the server counts it (`GET /_gust/usage`).

use anyhow::{bail, Result};
use serde_json::Value;

use super::{block_on, output};
use crate::client::Client;
use crate::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// The month (UTC), e.g. 2026-12; default: the current one.
    #[arg(long)]
    month: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub fn run(args: UsageArgs) -> Result<()> {
    block_on(usage(args))?
}

async fn usage(args: UsageArgs) -> Result<()> {
    let query = match &args.month {
        Some(month) => {
            // Checked here too, so a typo is told without a round trip.
            if !is_month(month) {
                bail!("invalid month {month:?}: expected YYYY-MM, e.g. 2026-12");
            }
            format!("month={month}")
        }
        None => String::new(),
    };
    let client = Client::connect(&args.connect)?;
    let report = client.call("GET", "/_gust/usage", &query, None).await?;
    if args.connect.json {
        return output::json(&report);
    }
    print_report(&report);
    Ok(())
}

fn is_month(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit)
        && matches!(text[5..].parse::<u8>(), Ok(1..=12))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

fn print_report(report: &Value) {
    let currency = report["currency"].as_str().unwrap_or("USD");
    let money = |value: &Value| format!("{:.4} {currency}", number(value));
    println!(
        "Usage of account {} in {}",
        output::cell(&report["account"]),
        output::cell(&report["month"])
    );
    let functions = report["functions"].as_array().cloned().unwrap_or_default();
    if functions.is_empty() {
        println!("no invocations");
    } else {
        let rows: Vec<Vec<String>> = functions
            .iter()
            .map(|f| {
                vec![
                    output::cell(&f["function"]),
                    output::cell(&f["architecture"]),
                    output::cell(&f["requests"]),
                    format!("{:.3}", number(&f["gb_seconds"])),
                    format!("{:.3}", number(&f["provisioned_gb_seconds"])),
                    money(&f["cost_before_free_tier"]),
                ]
            })
            .collect();
        output::table(
            &[
                "FUNCTION",
                "ARCH",
                "REQUESTS",
                "GB-SECONDS",
                "PROVISIONED GB-S",
                "COST",
            ],
            &rows,
        );
    }
    let totals = &report["totals"];
    let free = &report["free_tier"];
    println!();
    println!("{:<22} {}", "Requests", output::cell(&totals["requests"]));
    println!("{:<22} {:.3}", "GB-seconds", number(&totals["gb_seconds"]));
    if number(&totals["provisioned_gb_seconds"]) > 0.0
        || number(&totals["provisioned_duration_gb_seconds"]) > 0.0
    {
        println!(
            "{:<22} {:.3} configured, {:.3} of invocations",
            "Provisioned GB-seconds",
            number(&totals["provisioned_gb_seconds"]),
            number(&totals["provisioned_duration_gb_seconds"])
        );
    }
    println!(
        "{:<22} {}",
        "Before free tier",
        money(&report["cost_before_free_tier"])
    );
    println!(
        "{:<22} -{} ({} of {} requests, {:.3} of {} GB-seconds)",
        "Free tier",
        money(&free["savings"]),
        output::cell(&free["requests_used"]),
        output::cell(&free["requests"]),
        number(&free["gb_seconds_used"]),
        number(&free["gb_seconds"]),
    );
    println!("{:<22} {}", "Cost", money(&report["cost"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked() {
        assert!(is_month("2026-12"));
        assert!(is_month("2026-01"));
        assert!(!is_month("2026-13"));
        assert!(!is_month("2026-00"));
        assert!(!is_month("2026-1"));
        assert!(!is_month("2026/12"));
        assert!(!is_month("é026-12"));
    }
}
