//! Runtimes inside execution environments: the per-environment Runtime API server
//! ([`api`]), Gust's own bootstraps for Python and Node.js (embedded in the binary and
//! written to the data directory at start), and the registry that says how to start a
//! runtime ([`registry`]).

pub mod api;
pub mod registry;

pub use api::{
    Closed, InitOutcome, Invocation, InvocationResult, PeerCheck, RuntimeApi, StreamFailure,
    StreamPart, StreamedResponse, MAX_RESPONSE_BYTES, MAX_STREAMED_BYTES,
};
pub use registry::{Launch, LaunchError, RuntimeRegistry, View};
