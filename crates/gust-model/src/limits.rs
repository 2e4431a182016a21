//! The service limits Lambda enforces for on-demand functions (not the wider model maxima).

/// Memory, MB.
pub const MEMORY_MIN_MB: i64 = 128;
/// Memory, MB.
pub const MEMORY_MAX_MB: i64 = 10_240;
/// Default memory, MB.
pub const MEMORY_DEFAULT_MB: u32 = 128;
/// Timeout, seconds.
pub const TIMEOUT_MIN_S: i64 = 1;
/// Timeout, seconds.
pub const TIMEOUT_MAX_S: i64 = 900;
/// Default timeout, seconds.
pub const TIMEOUT_DEFAULT_S: u32 = 3;
/// `/tmp` size, MB.
pub const EPHEMERAL_MIN_MB: i64 = 512;
/// `/tmp` size, MB.
pub const EPHEMERAL_MAX_MB: i64 = 10_240;
/// The model's maxima (`MemorySize`, `Timeout`, `EphemeralStorageSize` shapes): past these
/// the front end refuses a value; between the service limits above and these, the service.
pub const MEMORY_MODEL_MAX_MB: i64 = 32_768;
/// See [`MEMORY_MODEL_MAX_MB`].
pub const TIMEOUT_MODEL_MAX_S: i64 = 5_400;
/// See [`MEMORY_MODEL_MAX_MB`].
pub const EPHEMERAL_MODEL_MAX_MB: i64 = 32_768;
/// Default `/tmp` size, MB.
pub const EPHEMERAL_DEFAULT_MB: u32 = 512;
/// Environment variables: bytes of the compact JSON object.
pub const ENVIRONMENT_MAX_BYTES: usize = 4096;
/// Handler string length.
pub const HANDLER_MAX_LEN: usize = 128;
/// Description length.
pub const DESCRIPTION_MAX_LEN: usize = 256;
/// Role ARN length.
pub const ROLE_MAX_LEN: usize = 10000;
/// Bare function name length.
pub const FUNCTION_NAME_MAX_LEN: usize = 64;
/// Length of a function identifier (name or ARN) on create/update operations.
pub const FUNCTION_ID_MAX_LEN: usize = 140;
/// Length of a function identifier on read and invoke operations.
pub const NAMESPACED_FUNCTION_ID_MAX_LEN: usize = 256;
/// Zipped package, direct upload.
pub const CODE_ZIPPED_MAX_BYTES: u64 = 52_428_800;
/// Unzipped package (function and layers).
pub const CODE_UNZIPPED_MAX_BYTES: u64 = 262_144_000;
/// The largest CreateFunction request body (base64 of a 50 MB zip plus JSON).
pub const CREATE_FUNCTION_REQUEST_MAX_BYTES: usize = 70_167_211;
/// Account-wide code storage.
pub const TOTAL_CODE_SIZE_BYTES: u64 = 80_530_636_800;
/// Account concurrency.
pub const ACCOUNT_CONCURRENT_EXECUTIONS: u32 = 1000;
/// Layers per function.
pub const LAYERS_MAX: usize = 5;
/// Tags per resource.
pub const TAGS_MAX: usize = 50;
/// Tag key length.
pub const TAG_KEY_MAX_LEN: usize = 128;
/// Tag value length.
pub const TAG_VALUE_MAX_LEN: usize = 256;
/// Page size of list operations.
pub const LIST_MAX_ITEMS_DEFAULT: usize = 50;
/// Largest page of ListFunctions.
pub const LIST_MAX_ITEMS: i64 = 10_000;
