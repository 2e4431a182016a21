//! The store's interface: what the service needs from durable storage. The service keeps
//! everything in memory (this process is the only writer) and writes through: [`load`] once
//! at start, then [`commit`] for every change. Every record is keyed by its account and
//! API, so a store shared between servers can partition by either. The embedded
//! implementation is SQLite ([`crate::sqlite`]).
//!
//! [`load`]: ApigwStore::load
//! [`commit`]: ApigwStore::commit

use crate::error::ApigwError;
use crate::model::{Api, Deployment, Integration, Route, Stage};

/// The API a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The account.
    pub account: String,
    /// The API.
    pub api_id: String,
}

/// Everything stored.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The APIs.
    pub apis: Vec<Api>,
    /// Routes, by API.
    pub routes: Vec<(Owner, Route)>,
    /// Integrations, by API.
    pub integrations: Vec<(Owner, Integration)>,
    /// Stages, by API.
    pub stages: Vec<(Owner, Stage)>,
    /// Deployments, by API.
    pub deployments: Vec<(Owner, Deployment)>,
}

/// One change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates or replaces an API.
    PutApi(Box<Api>),
    /// Deletes an API with its routes, integrations, stages and deployments.
    DeleteApi(Owner),
    /// Creates or replaces a route.
    PutRoute(Owner, Box<Route>),
    /// Deletes a route.
    DeleteRoute(Owner, String),
    /// Creates or replaces an integration.
    PutIntegration(Owner, Box<Integration>),
    /// Deletes an integration.
    DeleteIntegration(Owner, String),
    /// Creates or replaces a stage.
    PutStage(Owner, Box<Stage>),
    /// Deletes a stage.
    DeleteStage(Owner, String),
    /// Creates or replaces a deployment.
    PutDeployment(Owner, Box<Deployment>),
    /// Deletes a deployment.
    DeleteDeployment(Owner, String),
}

/// Durable storage for API Gateway's HTTP APIs.
pub trait ApigwStore: Send + Sync + std::fmt::Debug {
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, ApigwError>;

    /// Applies changes atomically and durably: all of them are on disk when this returns
    /// `Ok`, and none of them when it returns an error.
    fn commit(&self, changes: &[Change]) -> Result<(), ApigwError>;
}
