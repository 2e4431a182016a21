//! The client commands.

pub mod deploy;
pub mod functions;
pub mod invoke;
mod output;
pub mod runtimes;
pub mod usage;

/// Runs a client command on a small single-threaded runtime.
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
