//! The service: every operation's semantics over state kept in memory and written through
//! to the store before an operation returns, and the served tables the data plane reads.
//!
//! One mutex orders the control plane's operations (they are rare, and each commits to
//! the store while holding it, so memory and disk change in the same order). After each
//! commit the APIs it touched are recompiled into [`ServedApi`]s and swapped into a map
//! behind a read-write lock; [`Apigw::resolve`] only clones an `Arc` out of that map, so a
//! request never waits on a commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use gust_model::Clock;

use crate::error::ApigwError;
use crate::model::{
    check_api_input, check_route_settings, check_stage_name, check_stage_variables, check_tags,
    integration_from, length, random_id, route_selection_expression, route_settings_from,
    target_integration, Api, ApiInput, Deployment, Integration, IntegrationInput, Page, Paged,
    Route, RouteInput, RouteSettings, Stage, StageInput, API_KEY_SELECTION_EXPRESSION, AWS_PROXY,
    DEFAULT, DEFAULT_TIMEOUT_MS, MAX_APIS, MAX_INTEGRATIONS, MAX_ROUTES, MAX_STAGES,
    MAX_STAGE_VARIABLES, MAX_TAGS, ROUTE_SELECTION_EXPRESSION,
};
use crate::routing::{Resolved, RouteKey, ServedApi, Serving};
use crate::sqlite::SqliteStore;
use crate::store::{ApigwStore, Change, Owner};

/// The most items a page holds, and the page size when `MaxResults` is not given.
const MAX_RESULTS: usize = 500;

/// An API with everything it owns.
#[derive(Debug)]
struct ApiState {
    api: Api,
    routes: BTreeMap<String, Route>,
    integrations: BTreeMap<String, Integration>,
    stages: BTreeMap<String, Stage>,
    deployments: BTreeMap<String, Deployment>,
}

impl ApiState {
    fn new(api: Api) -> Self {
        ApiState {
            api,
            routes: BTreeMap::new(),
            integrations: BTreeMap::new(),
            stages: BTreeMap::new(),
            deployments: BTreeMap::new(),
        }
    }

    fn owner(&self) -> Owner {
        Owner {
            account: self.api.account.clone(),
            api_id: self.api.api_id.clone(),
        }
    }

    fn route(&self, route_id: &str) -> Result<&Route, ApigwError> {
        self.routes
            .get(route_id)
            .ok_or_else(|| ApigwError::route_not_found(route_id))
    }

    fn integration(&self, integration_id: &str) -> Result<&Integration, ApigwError> {
        self.integrations
            .get(integration_id)
            .ok_or_else(|| ApigwError::integration_not_found(integration_id))
    }

    fn stage(&self, stage_name: &str) -> Result<&Stage, ApigwError> {
        self.stages
            .get(stage_name)
            .ok_or_else(|| ApigwError::stage_not_found(stage_name))
    }

    fn deployment(&self, deployment_id: &str) -> Result<&Deployment, ApigwError> {
        self.deployments
            .get(deployment_id)
            .ok_or_else(|| ApigwError::deployment_not_found(deployment_id))
    }

    /// A route key no route of this API (but `except`) has the shape of.
    fn check_route_key(&self, key: &str, except: Option<&str>) -> Result<(), ApigwError> {
        let shape = RouteKey::parse(key)?.shape();
        for route in self.routes.values() {
            if Some(route.route_id.as_str()) == except {
                continue;
            }
            if route.route_key == key {
                return Err(ApigwError::conflict(format!(
                    "Route with key {key} already exists for this API"
                )));
            }
            if RouteKey::parse(&route.route_key).is_ok_and(|r| r.shape() == shape) {
                return Err(ApigwError::conflict(format!(
                    "Route with key {key} conflicts with the route {}: both match the same requests",
                    route.route_key
                )));
            }
        }
        Ok(())
    }

    /// A route target: empty removes it; otherwise an existing integration.
    fn target(&self, target: &str) -> Result<Option<String>, ApigwError> {
        if target.is_empty() {
            return Ok(None);
        }
        let id = target_integration(target)?;
        self.integration(id)?;
        Ok(Some(target.to_owned()))
    }

    /// Route settings name routes of the API by key.
    fn check_route_settings(
        &self,
        settings: &BTreeMap<String, RouteSettings>,
    ) -> Result<(), ApigwError> {
        for (key, value) in settings {
            if !self.routes.values().any(|r| &r.route_key == key) {
                return Err(ApigwError::NotFound {
                    message: format!(
                        "Unable to find Route by key {key} within the provided RouteSettings"
                    ),
                    resource_type: "Route",
                });
            }
            check_route_settings(value)?;
        }
        Ok(())
    }

    /// A new identifier of `len` characters no resource of `existing` has.
    fn fresh_id<T>(existing: &BTreeMap<String, T>, len: usize) -> String {
        loop {
            let id = random_id(len);
            if !existing.contains_key(&id) {
                return id;
            }
        }
    }

    /// A deployment of the API's routes and integrations as they are now.
    fn snapshot(
        &self,
        description: Option<String>,
        now: time::OffsetDateTime,
        auto: bool,
    ) -> Deployment {
        Deployment {
            deployment_id: Self::fresh_id(&self.deployments, 6),
            description,
            created: now,
            auto_deployed: auto,
            routes: self.routes.values().cloned().collect(),
            integrations: self.integrations.values().cloned().collect(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// By API id (unique in the server, whatever the account).
    apis: BTreeMap<String, ApiState>,
}

impl State {
    /// Applies a change; the API it touched.
    fn apply(&mut self, change: Change) -> String {
        fn with(state: &mut State, owner: &Owner, f: impl FnOnce(&mut ApiState)) {
            if let Some(api) = state.apis.get_mut(&owner.api_id) {
                f(api);
            }
        }
        match change {
            Change::PutApi(api) => {
                let id = api.api_id.clone();
                match self.apis.get_mut(&id) {
                    Some(existing) => existing.api = *api,
                    None => {
                        self.apis.insert(id.clone(), ApiState::new(*api));
                    }
                }
                id
            }
            Change::DeleteApi(owner) => {
                self.apis.remove(&owner.api_id);
                owner.api_id
            }
            Change::PutRoute(owner, route) => {
                with(self, &owner, |a| {
                    a.routes.insert(route.route_id.clone(), *route);
                });
                owner.api_id
            }
            Change::DeleteRoute(owner, id) => {
                with(self, &owner, |a| {
                    a.routes.remove(&id);
                });
                owner.api_id
            }
            Change::PutIntegration(owner, integration) => {
                with(self, &owner, |a| {
                    a.integrations
                        .insert(integration.integration_id.clone(), *integration);
                });
                owner.api_id
            }
            Change::DeleteIntegration(owner, id) => {
                with(self, &owner, |a| {
                    a.integrations.remove(&id);
                });
                owner.api_id
            }
            Change::PutStage(owner, stage) => {
                with(self, &owner, |a| {
                    a.stages.insert(stage.stage_name.clone(), *stage);
                });
                owner.api_id
            }
            Change::DeleteStage(owner, name) => {
                with(self, &owner, |a| {
                    a.stages.remove(&name);
                });
                owner.api_id
            }
            Change::PutDeployment(owner, deployment) => {
                with(self, &owner, |a| {
                    a.deployments
                        .insert(deployment.deployment_id.clone(), *deployment);
                });
                owner.api_id
            }
            Change::DeleteDeployment(owner, id) => {
                with(self, &owner, |a| {
                    a.deployments.remove(&id);
                });
                owner.api_id
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The page of `items` (sorted by their keys, ascending) that `page` asks for.
fn paginate<T>(items: Vec<(String, T)>, page: &Page) -> Result<Paged<T>, ApigwError> {
    let max = match &page.max_results {
        None => MAX_RESULTS,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return Err(ApigwError::bad_request(format!(
                    "Invalid maxResults {text}: it must be a number between 1 and {MAX_RESULTS}"
                )))
            }
        },
    };
    let start = match &page.next_token {
        None => 0,
        Some(token) => {
            let key = hex::decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.strip_prefix("gust1:").map(str::to_owned))
                .ok_or_else(|| ApigwError::bad_request("Invalid nextToken specified"))?;
            items.partition_point(|(k, _)| *k <= key)
        }
    };
    let mut rest: Vec<(String, T)> = items.into_iter().skip(start).collect();
    let next_token = (rest.len() > max).then(|| hex::encode(format!("gust1:{}", rest[max - 1].0)));
    rest.truncate(max);
    Ok(Paged {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next_token,
    })
}

/// A resource a tag ARN names.
enum Tagged {
    Api(String),
    Stage(String, String),
}

/// API Gateway's HTTP APIs.
#[derive(Debug)]
pub struct Apigw {
    store: Arc<dyn ApigwStore>,
    clock: Arc<dyn Clock>,
    region: String,
    state: Mutex<State>,
    /// What each API serves, by API id: replaced whole after every change to the API.
    served: RwLock<HashMap<String, Arc<ServedApi>>>,
}

impl Apigw {
    /// Opens the service over the SQLite database at `path` (created if missing). ARNs
    /// name `region`; time comes from `clock`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, region: &str) -> Result<Arc<Self>, ApigwError> {
        let store = SqliteStore::open(path)?;
        Self::with_store(Arc::new(store), clock, region)
    }

    /// The service over any store.
    pub fn with_store(
        store: Arc<dyn ApigwStore>,
        clock: Arc<dyn Clock>,
        region: &str,
    ) -> Result<Arc<Self>, ApigwError> {
        let snapshot = store.load()?;
        let mut state = State::default();
        for api in snapshot.apis {
            state.apply(Change::PutApi(Box::new(api)));
        }
        for (owner, route) in snapshot.routes {
            state.apply(Change::PutRoute(owner, Box::new(route)));
        }
        for (owner, integration) in snapshot.integrations {
            state.apply(Change::PutIntegration(owner, Box::new(integration)));
        }
        for (owner, stage) in snapshot.stages {
            state.apply(Change::PutStage(owner, Box::new(stage)));
        }
        for (owner, deployment) in snapshot.deployments {
            state.apply(Change::PutDeployment(owner, Box::new(deployment)));
        }
        let service = Apigw {
            store,
            clock,
            region: region.to_owned(),
            state: Mutex::new(State::default()),
            served: RwLock::new(HashMap::new()),
        };
        let ids: Vec<String> = state.apis.keys().cloned().collect();
        for id in ids {
            service.publish(&state, &id);
        }
        *lock(&service.state) = state;
        Ok(Arc::new(service))
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// An API's ARN (what `TagResource` takes): `arn:aws:apigateway:{region}::/apis/{id}`.
    pub fn api_arn(&self, api_id: &str) -> String {
        format!("arn:aws:apigateway:{}::/apis/{api_id}", self.region)
    }

    // -----------------------------------------------------------------------------------
    // The data plane's lookups.

    fn served(&self, api_id: &str) -> Option<Arc<ServedApi>> {
        self.served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(api_id)
            .cloned()
    }

    /// The route serving `method` + `path` (the raw path below the API's endpoint,
    /// starting with `/`) of API `api_id` in any account: the stage the path selects, the
    /// most specific route of what that stage serves, and its integration. `None` when
    /// nothing serves (no such API or stage, no route, a route without integration, or the
    /// endpoint disabled): API Gateway answers 404 `{"message":"Not Found"}` (403
    /// `{"message":"Forbidden"}` for a disabled endpoint; see [`Apigw::serving`]).
    /// Reads memory only.
    pub fn resolve(&self, api_id: &str, method: &str, path: &str) -> Option<Resolved> {
        self.served(api_id)?.resolve(method, path)
    }

    /// What the data plane needs of API `api_id` besides a route: its account, its CORS
    /// configuration (preflight requests are answered from it, whatever the routes) and
    /// whether its endpoint is disabled. `None` when there is no such API.
    pub fn serving(&self, api_id: &str) -> Option<Serving> {
        self.served(api_id).map(|api| api.serving().clone())
    }

    // -----------------------------------------------------------------------------------
    // Writing.

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `changes` to the store, then to memory, then recompiles what they touched.
    fn commit(&self, state: &mut State, changes: Vec<Change>) -> Result<(), ApigwError> {
        self.store.commit(&changes)?;
        let touched: BTreeSet<String> = changes.into_iter().map(|c| state.apply(c)).collect();
        for api_id in touched {
            self.publish(state, &api_id);
        }
        Ok(())
    }

    /// Replaces what `api_id` serves with what `state` holds.
    fn publish(&self, state: &State, api_id: &str) {
        let built = state.apis.get(api_id).map(|a| {
            Arc::new(ServedApi::build(
                &self.region,
                &a.api,
                &a.routes,
                &a.integrations,
                &a.stages,
                &a.deployments,
            ))
        });
        let mut served = self.served.write().unwrap_or_else(PoisonError::into_inner);
        match built {
            Some(api) => served.insert(api_id.to_owned(), api),
            None => served.remove(api_id),
        };
    }

    fn api<'s>(state: &'s State, account: &str, api_id: &str) -> Result<&'s ApiState, ApigwError> {
        state
            .apis
            .get(api_id)
            .filter(|a| a.api.account == account)
            .ok_or_else(|| ApigwError::api_not_found(account, api_id))
    }

    // -----------------------------------------------------------------------------------
    // APIs.

    /// `CreateApi`. With `Target` (quick create), also an `AWS_PROXY` integration (payload
    /// format 2.0) of that function, a route (`RouteKey`, or `$default`) to it and the
    /// `$default` stage with `AutoDeploy`, all marked as managed by API Gateway.
    pub fn create_api(&self, account: &str, input: &ApiInput) -> Result<Api, ApigwError> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| ApigwError::bad_request("Name is required"))?;
        let protocol_type = input
            .protocol_type
            .clone()
            .ok_or_else(|| ApigwError::bad_request("ProtocolType is required"))?;
        check_api_input(input)?;
        if input.route_key.is_some() && input.target.is_none() {
            return Err(ApigwError::bad_request(
                "RouteKey is only supported with Target (quick create)",
            ));
        }
        let now = self.clock.now();
        let mut state = self.lock();
        if state
            .apis
            .values()
            .filter(|a| a.api.account == account)
            .count()
            >= MAX_APIS
        {
            return Err(ApigwError::limit("APIs per account", MAX_APIS));
        }
        let api_id = ApiState::fresh_id(&state.apis, 10);
        let api = Api {
            account: account.to_owned(),
            api_id: api_id.clone(),
            name,
            protocol_type,
            description: input.description.clone(),
            version: input.version.clone(),
            route_selection_expression: match &input.route_selection_expression {
                Some(e) => route_selection_expression(e)?,
                None => ROUTE_SELECTION_EXPRESSION.to_owned(),
            },
            api_key_selection_expression: input
                .api_key_selection_expression
                .clone()
                .unwrap_or_else(|| API_KEY_SELECTION_EXPRESSION.to_owned()),
            cors: input.cors.clone(),
            disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
            ip_address_type: input
                .ip_address_type
                .clone()
                .unwrap_or_else(|| "ipv4".to_owned()),
            created: now,
            tags: input.tags.clone(),
        };
        let owner = Owner {
            account: account.to_owned(),
            api_id,
        };
        let mut changes = vec![Change::PutApi(Box::new(api.clone()))];
        if let Some(target) = &input.target {
            let integration = Integration {
                integration_id: random_id(7),
                integration_type: AWS_PROXY.to_owned(),
                integration_uri: target.clone(),
                integration_method: "POST".to_owned(),
                payload_format_version: "2.0".to_owned(),
                timeout_ms: DEFAULT_TIMEOUT_MS,
                connection_type: "INTERNET".to_owned(),
                description: None,
                api_gateway_managed: true,
            };
            let route = Route {
                route_id: random_id(7),
                route_key: input
                    .route_key
                    .clone()
                    .unwrap_or_else(|| DEFAULT.to_owned()),
                target: Some(format!("integrations/{}", integration.integration_id)),
                authorization_type: "NONE".to_owned(),
                api_key_required: false,
                operation_name: None,
                api_gateway_managed: true,
            };
            let stage = Stage {
                stage_name: DEFAULT.to_owned(),
                auto_deploy: true,
                deployment_id: None,
                description: None,
                stage_variables: BTreeMap::new(),
                default_route_settings: None,
                route_settings: BTreeMap::new(),
                created: now,
                last_updated: now,
                tags: BTreeMap::new(),
                api_gateway_managed: true,
            };
            changes.push(Change::PutIntegration(owner.clone(), Box::new(integration)));
            changes.push(Change::PutRoute(owner.clone(), Box::new(route)));
            changes.push(Change::PutStage(owner, Box::new(stage)));
        }
        self.commit(&mut state, changes)?;
        Ok(api)
    }

    /// `GetApi`.
    pub fn get_api(&self, account: &str, api_id: &str) -> Result<Api, ApigwError> {
        let state = self.lock();
        Ok(Self::api(&state, account, api_id)?.api.clone())
    }

    /// `GetApis`: the account's APIs, by id.
    pub fn get_apis(&self, account: &str, page: &Page) -> Result<Paged<Api>, ApigwError> {
        let state = self.lock();
        let items = state
            .apis
            .values()
            .filter(|a| a.api.account == account)
            .map(|a| (a.api.api_id.clone(), a.api.clone()))
            .collect();
        paginate(items, page)
    }

    /// `UpdateApi`: changes what `input` names. `Target` changes the URI of the
    /// integration quick create made.
    pub fn update_api(
        &self,
        account: &str,
        api_id: &str,
        input: &ApiInput,
    ) -> Result<Api, ApigwError> {
        check_api_input(input)?;
        let mut state = self.lock();
        let current = Self::api(&state, account, api_id)?;
        if input.route_key.is_some() {
            return Err(ApigwError::bad_request(
                "The route key of the route quick create made can't be modified",
            ));
        }
        let mut api = current.api.clone();
        if let Some(name) = &input.name {
            api.name = name.clone();
        }
        if let Some(description) = &input.description {
            api.description = Some(description.clone());
        }
        if let Some(version) = &input.version {
            api.version = Some(version.clone());
        }
        if let Some(expression) = &input.route_selection_expression {
            api.route_selection_expression = route_selection_expression(expression)?;
        }
        if let Some(expression) = &input.api_key_selection_expression {
            api.api_key_selection_expression = expression.clone();
        }
        if let Some(cors) = &input.cors {
            api.cors = Some(cors.clone());
        }
        if let Some(disabled) = input.disable_execute_api_endpoint {
            api.disable_execute_api_endpoint = disabled;
        }
        if let Some(kind) = &input.ip_address_type {
            api.ip_address_type = kind.clone();
        }
        let owner = current.owner();
        let mut changes = Vec::new();
        if let Some(target) = &input.target {
            let mut managed = current
                .integrations
                .values()
                .find(|i| i.api_gateway_managed)
                .cloned()
                .ok_or_else(|| {
                    ApigwError::bad_request(
                        "Target can only be updated on an API created with quick create",
                    )
                })?;
            managed.integration_uri = target.clone();
            changes.push(Change::PutIntegration(owner, Box::new(managed)));
        }
        changes.insert(0, Change::PutApi(Box::new(api.clone())));
        self.commit(&mut state, changes)?;
        Ok(api)
    }

    /// `DeleteApi`: the API and everything it owns.
    pub fn delete_api(&self, account: &str, api_id: &str) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let owner = Self::api(&state, account, api_id)?.owner();
        self.commit(&mut state, vec![Change::DeleteApi(owner)])
    }

    /// `DeleteCorsConfiguration`.
    pub fn delete_cors_configuration(&self, account: &str, api_id: &str) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let mut api = Self::api(&state, account, api_id)?.api.clone();
        api.cors = None;
        self.commit(&mut state, vec![Change::PutApi(Box::new(api))])
    }

    // -----------------------------------------------------------------------------------
    // Routes.

    /// `CreateRoute`.
    pub fn create_route(
        &self,
        account: &str,
        api_id: &str,
        input: &RouteInput,
    ) -> Result<Route, ApigwError> {
        let key = input
            .route_key
            .clone()
            .ok_or_else(|| ApigwError::bad_request("RouteKey is required"))?;
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        api.check_route_key(&key, None)?;
        let target = match &input.target {
            Some(t) => api.target(t)?,
            None => None,
        };
        let (authorization_type, api_key_required, operation_name) =
            route_settings_from(None, input)?;
        if api.routes.len() >= MAX_ROUTES {
            return Err(ApigwError::limit("Routes per API", MAX_ROUTES));
        }
        let route = Route {
            route_id: ApiState::fresh_id(&api.routes, 7),
            route_key: key,
            target,
            authorization_type,
            api_key_required,
            operation_name,
            api_gateway_managed: false,
        };
        let change = Change::PutRoute(api.owner(), Box::new(route.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(route)
    }

    /// `GetRoute`.
    pub fn get_route(
        &self,
        account: &str,
        api_id: &str,
        route_id: &str,
    ) -> Result<Route, ApigwError> {
        let state = self.lock();
        Ok(Self::api(&state, account, api_id)?.route(route_id)?.clone())
    }

    /// `GetRoutes`, by id.
    pub fn get_routes(
        &self,
        account: &str,
        api_id: &str,
        page: &Page,
    ) -> Result<Paged<Route>, ApigwError> {
        let state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let items = api
            .routes
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        paginate(items, page)
    }

    /// `UpdateRoute`. An empty `Target` removes the target.
    pub fn update_route(
        &self,
        account: &str,
        api_id: &str,
        route_id: &str,
        input: &RouteInput,
    ) -> Result<Route, ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let current = api.route(route_id)?;
        let mut route = current.clone();
        if let Some(key) = &input.route_key {
            if *key != current.route_key {
                if current.api_gateway_managed {
                    return Err(ApigwError::bad_request(format!(
                        "The route key of route {route_id} is managed by API Gateway and can't be modified"
                    )));
                }
                api.check_route_key(key, Some(route_id))?;
                route.route_key = key.clone();
            }
        }
        if let Some(target) = &input.target {
            route.target = api.target(target)?;
        }
        let (authorization_type, api_key_required, operation_name) =
            route_settings_from(Some(current), input)?;
        route.authorization_type = authorization_type;
        route.api_key_required = api_key_required;
        route.operation_name = operation_name;
        let change = Change::PutRoute(api.owner(), Box::new(route.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(route)
    }

    /// `DeleteRoute`.
    pub fn delete_route(
        &self,
        account: &str,
        api_id: &str,
        route_id: &str,
    ) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        api.route(route_id)?;
        let change = Change::DeleteRoute(api.owner(), route_id.to_owned());
        self.commit(&mut state, vec![change])
    }

    // -----------------------------------------------------------------------------------
    // Integrations.

    /// `CreateIntegration`.
    pub fn create_integration(
        &self,
        account: &str,
        api_id: &str,
        input: &IntegrationInput,
    ) -> Result<Integration, ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let id = ApiState::fresh_id(&api.integrations, 7);
        let integration = integration_from(&id, None, input)?;
        if api.integrations.len() >= MAX_INTEGRATIONS {
            return Err(ApigwError::limit("Integrations per API", MAX_INTEGRATIONS));
        }
        let change = Change::PutIntegration(api.owner(), Box::new(integration.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(integration)
    }

    /// `GetIntegration`.
    pub fn get_integration(
        &self,
        account: &str,
        api_id: &str,
        integration_id: &str,
    ) -> Result<Integration, ApigwError> {
        let state = self.lock();
        Ok(Self::api(&state, account, api_id)?
            .integration(integration_id)?
            .clone())
    }

    /// `GetIntegrations`, by id.
    pub fn get_integrations(
        &self,
        account: &str,
        api_id: &str,
        page: &Page,
    ) -> Result<Paged<Integration>, ApigwError> {
        let state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let items = api
            .integrations
            .iter()
            .map(|(id, i)| (id.clone(), i.clone()))
            .collect();
        paginate(items, page)
    }

    /// `UpdateIntegration`.
    pub fn update_integration(
        &self,
        account: &str,
        api_id: &str,
        integration_id: &str,
        input: &IntegrationInput,
    ) -> Result<Integration, ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let current = api.integration(integration_id)?;
        let integration = integration_from(integration_id, Some(current), input)?;
        let change = Change::PutIntegration(api.owner(), Box::new(integration.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(integration)
    }

    /// `DeleteIntegration`: refused while a route targets it, and for the integration
    /// quick create made.
    pub fn delete_integration(
        &self,
        account: &str,
        api_id: &str,
        integration_id: &str,
    ) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let integration = api.integration(integration_id)?;
        if let Some(route) = api
            .routes
            .values()
            .find(|r| r.integration_id() == Some(integration_id))
        {
            return Err(ApigwError::conflict(format!(
                "Unable to delete integration {integration_id}: it is the target of the route {} ({})",
                route.route_id, route.route_key
            )));
        }
        if integration.api_gateway_managed {
            return Err(ApigwError::bad_request(format!(
                "Integration {integration_id} is managed by API Gateway and can't be deleted"
            )));
        }
        let change = Change::DeleteIntegration(api.owner(), integration_id.to_owned());
        self.commit(&mut state, vec![change])
    }

    // -----------------------------------------------------------------------------------
    // Stages.

    /// `CreateStage`.
    pub fn create_stage(
        &self,
        account: &str,
        api_id: &str,
        input: &StageInput,
    ) -> Result<Stage, ApigwError> {
        let name = input
            .stage_name
            .clone()
            .ok_or_else(|| ApigwError::bad_request("StageName is required"))?;
        check_stage_name(&name)?;
        if let Some(description) = &input.description {
            length(description, "description", 0, 1024)?;
        }
        check_tags(&input.tags)?;
        let variables = input.stage_variables.clone().unwrap_or_default();
        check_stage_variables(&variables, false)?;
        if variables.len() > MAX_STAGE_VARIABLES {
            return Err(ApigwError::bad_request(format!(
                "Too many stage variables: a stage can have at most {MAX_STAGE_VARIABLES}"
            )));
        }
        if let Some(settings) = &input.default_route_settings {
            check_route_settings(settings)?;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        if api.stages.contains_key(&name) {
            return Err(ApigwError::conflict(format!("Stage {name} already exists")));
        }
        let auto_deploy = input.auto_deploy.unwrap_or(false);
        if let Some(id) = &input.deployment_id {
            if auto_deploy {
                return Err(ApigwError::bad_request(
                    "DeploymentId can't be set when autoDeploy is enabled",
                ));
            }
            api.deployment(id)?;
        }
        let route_settings = input.route_settings.clone().unwrap_or_default();
        api.check_route_settings(&route_settings)?;
        if api.stages.len() >= MAX_STAGES {
            return Err(ApigwError::limit("Stages per API", MAX_STAGES));
        }
        let stage = Stage {
            stage_name: name,
            auto_deploy,
            deployment_id: input.deployment_id.clone(),
            description: input.description.clone(),
            stage_variables: variables,
            default_route_settings: input.default_route_settings.clone(),
            route_settings,
            created: now,
            last_updated: now,
            tags: input.tags.clone(),
            api_gateway_managed: false,
        };
        let change = Change::PutStage(api.owner(), Box::new(stage.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(stage)
    }

    /// `GetStage`.
    pub fn get_stage(
        &self,
        account: &str,
        api_id: &str,
        stage_name: &str,
    ) -> Result<Stage, ApigwError> {
        let state = self.lock();
        Ok(Self::api(&state, account, api_id)?
            .stage(stage_name)?
            .clone())
    }

    /// `GetStages`, by name.
    pub fn get_stages(
        &self,
        account: &str,
        api_id: &str,
        page: &Page,
    ) -> Result<Paged<Stage>, ApigwError> {
        let state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let items = api
            .stages
            .iter()
            .map(|(name, s)| (name.clone(), s.clone()))
            .collect();
        paginate(items, page)
    }

    /// `UpdateStage`. Stage variables and route settings are merged in (an empty variable
    /// removes it). Turning `AutoDeploy` off leaves the stage serving the routes as they
    /// are now (a deployment of them, as API Gateway's last automatic one).
    pub fn update_stage(
        &self,
        account: &str,
        api_id: &str,
        stage_name: &str,
        input: &StageInput,
    ) -> Result<Stage, ApigwError> {
        if let Some(description) = &input.description {
            length(description, "description", 0, 1024)?;
        }
        if let Some(variables) = &input.stage_variables {
            check_stage_variables(variables, true)?;
        }
        if let Some(settings) = &input.default_route_settings {
            check_route_settings(settings)?;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let current = api.stage(stage_name)?;
        let mut stage = current.clone();
        let mut changes = Vec::new();
        if let Some(auto) = input.auto_deploy {
            stage.auto_deploy = auto;
        }
        if let Some(id) = &input.deployment_id {
            if stage.auto_deploy {
                return Err(ApigwError::bad_request(
                    "DeploymentId can't be set when autoDeploy is enabled",
                ));
            }
            api.deployment(id)?;
            stage.deployment_id = Some(id.clone());
        } else if current.auto_deploy && !stage.auto_deploy && !api.routes.is_empty() {
            let deployment = api.snapshot(None, now, true);
            stage.deployment_id = Some(deployment.deployment_id.clone());
            changes.push(Change::PutDeployment(api.owner(), Box::new(deployment)));
        }
        if let Some(description) = &input.description {
            stage.description = Some(description.clone());
        }
        if let Some(variables) = &input.stage_variables {
            for (name, value) in variables {
                if value.is_empty() {
                    stage.stage_variables.remove(name);
                } else {
                    stage.stage_variables.insert(name.clone(), value.clone());
                }
            }
            if stage.stage_variables.len() > MAX_STAGE_VARIABLES {
                return Err(ApigwError::bad_request(format!(
                    "Too many stage variables: a stage can have at most {MAX_STAGE_VARIABLES}"
                )));
            }
        }
        if let Some(settings) = &input.default_route_settings {
            stage.default_route_settings = Some(settings.clone());
        }
        if let Some(settings) = &input.route_settings {
            api.check_route_settings(settings)?;
            for (key, value) in settings {
                stage.route_settings.insert(key.clone(), value.clone());
            }
        }
        stage.last_updated = now;
        changes.push(Change::PutStage(api.owner(), Box::new(stage.clone())));
        self.commit(&mut state, changes)?;
        Ok(stage)
    }

    /// `DeleteStage`.
    pub fn delete_stage(
        &self,
        account: &str,
        api_id: &str,
        stage_name: &str,
    ) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        api.stage(stage_name)?;
        let change = Change::DeleteStage(api.owner(), stage_name.to_owned());
        self.commit(&mut state, vec![change])
    }

    // -----------------------------------------------------------------------------------
    // Deployments.

    /// `CreateDeployment`: a snapshot of the routes and integrations; with `stage_name`,
    /// that stage (which must not auto-deploy) serves it from now on.
    pub fn create_deployment(
        &self,
        account: &str,
        api_id: &str,
        description: Option<&str>,
        stage_name: Option<&str>,
    ) -> Result<Deployment, ApigwError> {
        if let Some(description) = description {
            length(description, "description", 0, 1024)?;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        if api.routes.is_empty() {
            return Err(ApigwError::bad_request(
                "Unable to deploy API because no routes exists in this API",
            ));
        }
        let stage = match stage_name {
            Some(name) => {
                let stage = api.stage(name)?;
                if stage.auto_deploy {
                    return Err(ApigwError::bad_request(format!(
                        "Stage {name} has autoDeploy enabled: it is deployed automatically and can't be given a deployment"
                    )));
                }
                Some(stage.clone())
            }
            None => None,
        };
        let deployment = api.snapshot(description.map(str::to_owned), now, false);
        let mut changes = vec![Change::PutDeployment(
            api.owner(),
            Box::new(deployment.clone()),
        )];
        if let Some(mut stage) = stage {
            stage.deployment_id = Some(deployment.deployment_id.clone());
            stage.last_updated = now;
            changes.push(Change::PutStage(api.owner(), Box::new(stage)));
        }
        self.commit(&mut state, changes)?;
        Ok(deployment)
    }

    /// `GetDeployment`.
    pub fn get_deployment(
        &self,
        account: &str,
        api_id: &str,
        deployment_id: &str,
    ) -> Result<Deployment, ApigwError> {
        let state = self.lock();
        Ok(Self::api(&state, account, api_id)?
            .deployment(deployment_id)?
            .clone())
    }

    /// `GetDeployments`, by id.
    pub fn get_deployments(
        &self,
        account: &str,
        api_id: &str,
        page: &Page,
    ) -> Result<Paged<Deployment>, ApigwError> {
        let state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let items = api
            .deployments
            .iter()
            .map(|(id, d)| (id.clone(), d.clone()))
            .collect();
        paginate(items, page)
    }

    /// `UpdateDeployment`: its description.
    pub fn update_deployment(
        &self,
        account: &str,
        api_id: &str,
        deployment_id: &str,
        description: Option<&str>,
    ) -> Result<Deployment, ApigwError> {
        if let Some(description) = description {
            length(description, "description", 0, 1024)?;
        }
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        let mut deployment = api.deployment(deployment_id)?.clone();
        if let Some(description) = description {
            deployment.description = Some(description.to_owned());
        }
        let change = Change::PutDeployment(api.owner(), Box::new(deployment.clone()));
        self.commit(&mut state, vec![change])?;
        Ok(deployment)
    }

    /// `DeleteDeployment`: refused while a stage serves it.
    pub fn delete_deployment(
        &self,
        account: &str,
        api_id: &str,
        deployment_id: &str,
    ) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let api = Self::api(&state, account, api_id)?;
        api.deployment(deployment_id)?;
        if api
            .stages
            .values()
            .any(|s| !s.auto_deploy && s.deployment_id.as_deref() == Some(deployment_id))
        {
            return Err(ApigwError::bad_request(
                "Active stages pointing to this deployment must be moved or deleted",
            ));
        }
        let change = Change::DeleteDeployment(api.owner(), deployment_id.to_owned());
        self.commit(&mut state, vec![change])
    }

    // -----------------------------------------------------------------------------------
    // Tags.

    /// The resource a tag ARN names: `arn:aws:apigateway:{region}::/apis/{id}` or
    /// `…/apis/{id}/stages/{name}`.
    fn tagged(&self, arn: &str) -> Result<Tagged, ApigwError> {
        let invalid = || ApigwError::bad_request(format!("Invalid resource ARN specified {arn}"));
        let rest = arn
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(':'))
            .filter(|(partition, _)| partition.starts_with("aws"))
            .and_then(|(_, r)| r.strip_prefix("apigateway:"))
            .ok_or_else(invalid)?;
        let (region, path) = rest.split_once("::").ok_or_else(invalid)?;
        let parts: Vec<&str> = path.split('/').collect();
        let tagged = match parts.as_slice() {
            ["", "apis", id] if !id.is_empty() => Tagged::Api((*id).to_owned()),
            ["", "apis", id, "stages", name] if !id.is_empty() && !name.is_empty() => {
                Tagged::Stage((*id).to_owned(), (*name).to_owned())
            }
            _ => return Err(invalid()),
        };
        if region != self.region {
            // Another region's resources are not here.
            let id = match &tagged {
                Tagged::Api(id) | Tagged::Stage(id, _) => id.clone(),
            };
            return Err(ApigwError::NotFound {
                message: format!("Invalid resource identifier specified {id}"),
                resource_type: "Api",
            });
        }
        Ok(tagged)
    }

    /// The tags of what `arn` names, and the change that would replace them.
    fn with_tags(
        &self,
        state: &State,
        account: &str,
        arn: &str,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(BTreeMap<String, String>, Change), ApigwError> {
        Ok(match self.tagged(arn)? {
            Tagged::Api(id) => {
                let mut api = Self::api(state, account, &id)?.api.clone();
                edit(&mut api.tags);
                (api.tags.clone(), Change::PutApi(Box::new(api)))
            }
            Tagged::Stage(id, name) => {
                let api = Self::api(state, account, &id)?;
                let mut stage = api.stage(&name)?.clone();
                edit(&mut stage.tags);
                (
                    stage.tags.clone(),
                    Change::PutStage(api.owner(), Box::new(stage)),
                )
            }
        })
    }

    /// `TagResource`: adds or replaces tags of an API or a stage.
    pub fn tag_resource(
        &self,
        account: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ApigwError> {
        check_tags(tags)?;
        let mut state = self.lock();
        let (merged, change) = self.with_tags(&state, account, arn, |existing| {
            existing.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        })?;
        if merged.len() > MAX_TAGS {
            return Err(ApigwError::bad_request(format!(
                "Too many tags: a resource can have at most {MAX_TAGS} tags"
            )));
        }
        self.commit(&mut state, vec![change])
    }

    /// `UntagResource`.
    pub fn untag_resource(
        &self,
        account: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), ApigwError> {
        let mut state = self.lock();
        let (_, change) = self.with_tags(&state, account, arn, |existing| {
            for key in keys {
                existing.remove(key);
            }
        })?;
        self.commit(&mut state, vec![change])
    }

    /// `GetTags`.
    pub fn get_tags(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ApigwError> {
        let state = self.lock();
        Ok(self.with_tags(&state, account, arn, |_| {})?.0)
    }
}
