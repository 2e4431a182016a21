// Gust's Node.js runtime: a Lambda Runtime API client with Lambda's handler contract.
// No npm dependencies. Started as `node bootstrap.js` in the function's code directory with
// the Lambda environment variables set; loads `_HANDLER` once (INIT), then serves
// invocations from AWS_LAMBDA_RUNTIME_API until the process is stopped.
// Handlers wrapped in `awslambda.streamifyResponse` stream their response: see
// "Response streaming" below.
'use strict';

const net = require('net');
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const util = require('util');
const { Writable, finished } = require('stream');

// Prime mode (a pre-started environment): everything above is loaded; block until the
// sandbox hands over the function's environment on the descriptor named by
// _GUST_HANDOVER_FD (its working directory, then its variables, each a 4-byte
// little-endian length and its bytes, until end-of-file), then take it as this process's
// whole environment and go on as a freshly started bootstrap.
function awaitHandOver(fd) {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      if (error.code === 'EAGAIN' || error.code === 'EINTR') continue;
      throw error;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  const data = Buffer.concat(chunks);
  // The environment ended before it was used.
  if (data.length === 0) process.exit(0);
  const items = [];
  for (let offset = 0; offset < data.length;) {
    const length = data.readUInt32LE(offset);
    items.push(data.subarray(offset + 4, offset + 4 + length).toString());
    offset += 4 + length;
  }
  const environment = new Map();
  for (const item of items.slice(1)) {
    const split = item.indexOf('=');
    environment.set(split < 0 ? item : item.slice(0, split), split < 0 ? '' : item.slice(split + 1));
  }
  // Only what differs is changed: unsetting TZ makes Node reload the system's time zone
  // (~6 ms of a cold start here), setting it resets the cache, and the primed process
  // has the runtime's fixed variables (TZ among them) already. (The names and values are
  // a fresh start's; their order in `process.env` is not: a fresh runtime's environment
  // is sorted by name.)
  for (const name of Object.keys(process.env)) {
    if (!environment.has(name)) delete process.env[name];
  }
  for (const [name, value] of environment) {
    if (process.env[name] !== value) process.env[name] = value;
  }
  process.chdir(items[0]);
}

// The Runtime API's address: set once the environment is this process's (`start`).
let apiAddress = '';
const PREFIX = '/2018-06-01/runtime';
let currentRequestId = '';

// One keep-alive HTTP/1.1 connection to the Runtime API. A small client of its own rather
// than Node's http module, which costs more per request than the whole round trip. The
// socket is unref'd between requests, so an otherwise empty event loop can end (that is
// how callback handlers wait for it).
class RuntimeClient {
  // `address`: another server than the Runtime API (the warm-up's).
  constructor(address) {
    this.address = address;
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.waiting = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const [host, port] = (this.address || apiAddress).split(':');
      const socket = net.createConnection({ host, port: Number(port) }, () => resolve(socket));
      socket.setNoDelay(true);
      socket.on('data', (chunk) => {
        this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
        this.parse();
      });
      const fail = (error) => {
        if (this.socket === socket) this.socket = null;
        const waiting = this.waiting;
        this.waiting = null;
        if (waiting) waiting.reject(error || new Error('Runtime API connection closed'));
        reject(error);
      };
      socket.on('error', fail);
      socket.on('close', () => fail(null));
    });
  }

  parse() {
    if (!this.waiting) return;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] || 0);
    if (this.buffer.length < end + 4 + length) return;
    const body = Buffer.from(this.buffer.subarray(end + 4, end + 4 + length));
    this.buffer = this.buffer.subarray(end + 4 + length);
    const waiting = this.waiting;
    this.waiting = null;
    if (this.socket) this.socket.unref();
    waiting.resolve({ status, headers, body });
  }

  // Claims the connection for a request whose head and chunked body the caller writes
  // itself to the returned socket. `answer` settles with the server's response, which
  // may come before the body ends when the server refuses it.
  async claim() {
    if (!this.socket) {
      this.buffer = Buffer.alloc(0);
      this.socket = await this.connect();
    }
    this.socket.ref();
    const answer = new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
    return { socket: this.socket, answer };
  }

  // Gives up the connection (after a refused streamed request, whose body cannot be
  // finished); the next request opens a new one.
  drop() {
    if (this.socket) this.socket.destroy();
    this.socket = null;
  }

  async request(method, urlPath, body, headers) {
    const payload = body === undefined ? Buffer.alloc(0) : body;
    let head = `${method} ${PREFIX}${urlPath} HTTP/1.1\r\nHost: ${apiAddress}\r\nContent-Length: ${payload.length}\r\n`;
    for (const [name, value] of Object.entries(headers || {})) head += `${name}: ${value}\r\n`;
    head += '\r\n';
    for (let attempt = 0; ; attempt += 1) {
      try {
        if (!this.socket) {
          this.buffer = Buffer.alloc(0);
          this.socket = await this.connect();
        }
        this.socket.ref();
        const answer = new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
        this.socket.write(payload.length < 65536 ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : head);
        if (payload.length >= 65536) this.socket.write(payload);
        return await answer;
      } catch (error) {
        if (this.socket) this.socket.destroy();
        this.socket = null;
        if (attempt > 0) throw error;
      }
    }
  }
}

const client = new RuntimeClient();

function request(method, urlPath, body, headers) {
  return client.request(method, urlPath, body, headers);
}

function post(urlPath, value, errorType) {
  const body = Buffer.from(value === undefined ? 'null' : value);
  const headers = { 'Content-Type': 'application/json' };
  if (errorType) headers['Lambda-Runtime-Function-Error-Type'] = errorType;
  return request('POST', urlPath, body, headers);
}

// console.* lines carry Lambda's prefix; a multi-line message stays one log event. With
// LoggingConfig.LogFormat JSON each is a JSON record, and lines below
// AWS_LAMBDA_LOG_LEVEL are dropped.
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT === 'JSON';
  const floor = Math.max(0, LEVELS.indexOf(process.env.AWS_LAMBDA_LOG_LEVEL || 'INFO'));
  const write = (level) => (...args) => {
    if (json) {
      if (LEVELS.indexOf(level) < floor) return;
      const entry = { timestamp: new Date().toISOString(), level, message: util.format(...args) };
      if (currentRequestId) entry.requestId = currentRequestId;
      process.stdout.write(`${JSON.stringify(entry)}\n`);
      return;
    }
    const message = util.format(...args).replace(/\n/g, '\r');
    process.stdout.write(`${new Date().toISOString()}\t${currentRequestId || 'undefined'}\t${level}\t${message}\n`);
  };
  console.log = write('INFO');
  console.info = write('INFO');
  console.warn = write('WARN');
  console.error = write('ERROR');
  console.debug = write('DEBUG');
  console.trace = write('TRACE');
}

function errorPayload(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name || 'Error',
      errorMessage: error.message,
      trace: String(error.stack || '').split('\n'),
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

class UserError extends Error {
  constructor(name, message, cause) {
    super(message);
    this.name = name;
    if (cause && cause.stack) this.stack = `${name}: ${message}\n${cause.stack}`;
  }
}

function nearestPackageType(dir) {
  for (let current = dir; ; current = path.dirname(current)) {
    const candidate = path.join(current, 'package.json');
    if (fs.existsSync(candidate)) {
      try {
        return JSON.parse(fs.readFileSync(candidate, 'utf8')).type;
      } catch (_) {
        return undefined;
      }
    }
    if (path.dirname(current) === current) return undefined;
  }
}

async function loadModule(appRoot, moduleRoot, file) {
  const base = path.resolve(appRoot, moduleRoot, file);
  const importFile = async (f) => {
    resolveBareImportsThroughNodePath();
    return import(pathToFileURL(f).href);
  };
  if (fs.existsSync(`${base}.js`)) {
    if (nearestPackageType(path.dirname(base)) === 'module') return importFile(`${base}.js`);
    try {
      return require(`${base}.js`);
    } catch (error) {
      if (error && error.code === 'ERR_REQUIRE_ESM') return importFile(`${base}.js`);
      throw error;
    }
  }
  if (fs.existsSync(`${base}.mjs`)) return importFile(`${base}.mjs`);
  if (fs.existsSync(`${base}.cjs`)) return require(`${base}.cjs`);
  const resolved = require.resolve(file, { paths: [appRoot, path.resolve(appRoot, moduleRoot)] });
  return require(resolved);
}

// ES modules ignore NODE_PATH, yet on Lambda an ES module handler imports the runtime's
// AWS SDK (`import { S3Client } from '@aws-sdk/client-s3'`) and layer packages: a bare
// specifier the default resolution cannot find is resolved again from each `node_modules`
// folder on NODE_PATH, in order (with ESM conditions, so packages' `import` entries win).
// Registered only when an ES module is loaded; needs `module.register` (Node.js 18.19+).
let bareImportsHooked = false;
function resolveBareImportsThroughNodePath() {
  if (bareImportsHooked) return;
  bareImportsHooked = true;
  const { register } = require('module');
  const folders = (process.env.NODE_PATH || '').split(':').filter((d) => d.endsWith('node_modules'));
  if (typeof register !== 'function' || folders.length === 0) return;
  const parents = folders.map((d) => pathToFileURL(path.join(path.dirname(d), 'gust-resolve.mjs')).href);
  const hooks = `
    let parents = [];
    export async function initialize(data) { parents = data.parents; }
    export async function resolve(specifier, context, next) {
      try {
        return await next(specifier, context);
      } catch (error) {
        const bare = !/^(\\.|\\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
        if (!bare || !error || error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
        for (const parentURL of parents) {
          try { return await next(specifier, { ...context, parentURL }); } catch (_) { /* next folder */ }
        }
        throw error;
      }
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { parents } });
}

async function loadHandler(appRoot, spec) {
  if (spec.includes('..')) {
    throw new UserError('Runtime.MalformedHandlerName', `'${spec}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const moduleRoot = path.dirname(spec);
  const base = path.basename(spec);
  const dot = base.indexOf('.');
  if (dot < 0) throw new UserError('Runtime.MalformedHandlerName', 'Bad handler');
  const file = base.slice(0, dot);
  const handlerPath = base.slice(dot + 1);
  let mod;
  try {
    mod = await loadModule(appRoot, moduleRoot, file);
  } catch (error) {
    if (error instanceof SyntaxError) throw new UserError('Runtime.UserCodeSyntaxError', `${error.name}: ${error.message}`, error);
    if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).split('\n')[0].includes(`'${file}'`)) {
      throw new UserError('Runtime.ImportModuleError', `Error: Cannot find module '${file}'`, error);
    }
    if (error && (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new UserError('Runtime.ImportModuleError', `${error.name}: ${error.message}`, error);
    }
    // As Lambda's runtime: anything else thrown while loading is reported as itself.
    throw error;
  }
  let handler = mod;
  for (const part of handlerPath.split('.')) {
    handler = handler === undefined || handler === null ? undefined : handler[part];
  }
  if (handler === undefined) throw new UserError('Runtime.HandlerNotFound', `${spec} is undefined or not exported`);
  if (typeof handler !== 'function') throw new UserError('Runtime.HandlerNotFound', `${spec} is not a function`);
  return handler;
}

// ---- Response streaming --------------------------------------------------------------
// As Lambda's Node.js runtime: `awslambda.streamifyResponse(handler)` marks a handler that
// is called as `handler(event, responseStream, context)`. The response is one POST to
// `/invocation/{id}/response` in Lambda's streaming mode (chunked, with error trailers);
// its head goes out with the first bytes written, and every write is sent as soon as the
// connection takes it. An error (thrown, rejected, or uncaught) ends the request with the
// trailers `Lambda-Runtime-Function-Error-Type` and `-Body` (base64 of the error JSON).

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const CRLF = Buffer.from('\r\n');
const kFail = Symbol('fail');
const kClose = Symbol('close');
const kAnswer = Symbol('answer');

function streamifyResponse(handler, options) {
  handler[STREAMING] = STREAM_RESPONSE;
  if (options && typeof options.highWaterMark === 'number') {
    handler[HIGH_WATER_MARK] = parseInt(options.highWaterMark, 10);
  }
  return handler;
}

// The `application/vnd.awslambda.http-integration-response` framing function URLs read: a
// JSON prelude `{statusCode, headers, cookies}` and 8 NUL bytes before the body.
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    // JSON.stringify escapes NUL, so the prelude itself never holds the delimiter.
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

// Streaming-mode problems in the handler's use of the stream (Lambda's error names).
function streamingError(message) {
  const error = new Error(message);
  error.name = 'Runtime.InvalidStreamingOperation';
  return error;
}

// Header values go out as latin1 text: no control characters (no header injection).
function headerValue(value) {
  return String(value).replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
}

// Lambda's runtime writes anything that is not text or bytes as JSON.
function toChunk(chunk) {
  if (typeof chunk === 'string' || Buffer.isBuffer(chunk) || chunk instanceof Uint8Array) return chunk;
  return JSON.stringify(chunk);
}

function settled(stream) {
  return new Promise((resolve) => finished(stream, { readable: false }, () => resolve()));
}

class ResponseStream extends Writable {
  #requestId;
  #contentType = 'application/octet-stream';
  #writeCalled = false;
  #wire = 'idle'; // 'open' once the request head is out, 'done' after the last chunk
  #chain = Promise.resolve();
  #socket = null;
  #answer = null;
  #trailers = null;

  constructor(requestId, highWaterMark) {
    super(highWaterMark > 0 ? { highWaterMark } : {});
    this.#requestId = requestId;
    // What HttpResponseStream.from installs: called once, before the first bytes.
    this._onBeforeFirstWrite = undefined;
    // Failures reach the handler through write callbacks and stream.finished/pipeline;
    // an unobserved one must not become an uncaught exception.
    this.on('error', () => {});
  }

  setContentType(contentType) {
    if (this.#writeCalled || this.writableEnded) throw streamingError('Cannot set content-type, too late.');
    this.#contentType = headerValue(contentType);
  }

  write(chunk, encoding, callback) {
    this.#writeCalled = true;
    return super.write(toChunk(chunk), encoding, callback);
  }

  end(chunk, encoding, callback) {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      this.#writeCalled = true;
      return super.end(toChunk(chunk), encoding, callback);
    }
    return super.end(chunk, encoding, callback);
  }

  _write(chunk, _encoding, callback) {
    this.#send([chunk]).then(() => callback(), callback);
  }

  _writev(entries, callback) {
    this.#send(entries.map((entry) => entry.chunk)).then(() => callback(), callback);
  }

  _final(callback) {
    const trailers = this.#trailers;
    this.#finish(trailers, !trailers).then(() => callback(), callback);
  }

  // Runs wire operations one after another, in the order they were asked for.
  #serial(operation) {
    const run = this.#chain.then(operation);
    this.#chain = run.then(() => {}, () => {});
    return run;
  }

  #send(chunks) {
    return this.#serial(async () => {
      if (this.#wire === 'done') throw streamingError('The response stream has already ended.');
      const head = this.#wire === 'idle' ? await this.#open() : null;
      const prelude = head ? this.#prelude() : [];
      await this.#put(head, [...prelude, chunks], null);
    });
  }

  // Ends the request: the last chunk, with the error trailers when failing. The prelude of
  // HttpResponseStream.from is sent even when nothing was written (unlike Lambda's
  // runtime, which then drops the status code and headers).
  #finish(trailers, withPrelude) {
    return this.#serial(async () => {
      if (this.#wire === 'done') return;
      const head = this.#wire === 'idle' ? await this.#open() : null;
      const prelude = head && withPrelude ? this.#prelude() : [];
      this.#wire = 'done';
      await this.#put(head, prelude, trailers || {});
    });
  }

  // What the _onBeforeFirstWrite hook writes, one chunk per write as Lambda's runtime
  // sends them (HttpResponseStream: the JSON prelude, then the 8 NUL bytes).
  #prelude() {
    const hook = this._onBeforeFirstWrite;
    if (typeof hook !== 'function') return [];
    const chunks = [];
    hook((chunk) => {
      chunks.push([Buffer.from(toChunk(chunk))]);
      return true;
    });
    return chunks;
  }

  async #open() {
    const { socket, answer } = await client.claim();
    this.#socket = socket;
    this.#wire = 'open';
    this.#answer = answer.then(
      (response) => {
        if (this.#wire !== 'done' && (response.status < 200 || response.status > 299)) {
          // Refused mid-body (e.g. too large): nothing more can go on this connection.
          this.#wire = 'done';
          client.drop();
          this.destroy(new Error(`Runtime API refused the streamed response: ${response.status} ${response.body.toString('utf8')}`));
        }
        return response;
      },
      (error) => {
        this.#wire = 'done';
        this.destroy(error);
        return null;
      },
    );
    let head = `POST ${PREFIX}/invocation/${this.#requestId}/response HTTP/1.1\r\nHost: ${apiAddress}\r\n`;
    head += 'Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n';
    head += 'Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n';
    head += `Content-Type: ${this.#contentType}\r\n\r\n`;
    return head;
  }

  // One socket write (corked, so one packet when small): the request head if given, one
  // HTTP chunk per entry of `chunks` (each a list of buffers; empty ones are skipped, as an
  // empty chunk would end the body), and when `trailers` is given the last chunk with them.
  #put(head, chunks, trailers) {
    const socket = this.#socket;
    if (!socket || socket.destroyed) return Promise.reject(new Error('Runtime API connection closed'));
    const pieces = [];
    let text = head || '';
    for (const parts of chunks) {
      const size = parts.reduce((total, part) => total + part.length, 0);
      if (size === 0) continue;
      pieces.push(Buffer.from(`${text}${size.toString(16)}\r\n`, 'latin1'), ...parts, CRLF);
      text = '';
    }
    if (trailers) {
      text += '0\r\n';
      if (trailers.type !== undefined) {
        text += `Lambda-Runtime-Function-Error-Type: ${headerValue(trailers.type)}\r\n`;
        text += `Lambda-Runtime-Function-Error-Body: ${trailers.body}\r\n`;
      }
      text += '\r\n';
    }
    if (text) pieces.push(Buffer.from(text, 'latin1'));
    return new Promise((resolve, reject) => {
      socket.cork();
      pieces.forEach((piece, index) => {
        if (index < pieces.length - 1) socket.write(piece);
        else socket.write(piece, (error) => (error ? reject(error) : resolve()));
      });
      socket.uncork();
    });
  }

  // Fails the response with `payload` (the error JSON) as trailers: after what was
  // written when the stream still works, at once when it was destroyed. A response that
  // had already ended stays as it was (the error can no longer be reported).
  async [kFail](payload) {
    const trailers = { type: payload.errorType, body: Buffer.from(JSON.stringify(payload)).toString('base64') };
    if (!this.destroyed && !this.writableFinished) {
      this.#trailers = trailers;
      if (!this.writableEnded) this.end();
      await settled(this);
    }
    await this.#chain;
    await this.#finish(trailers, false).catch(() => {});
  }

  // After the handler's promise resolved: end the stream if the handler did not.
  async [kClose]() {
    if (!this.destroyed && !this.writableEnded) this.end();
    if (!this.destroyed) await settled(this);
    await this.#chain;
    if (this.#wire !== 'done') {
      const error = this.errored || new Error('Response stream is not finished.');
      const payload = errorPayload(error);
      console.error(`Invoke Error \t${JSON.stringify(payload)}`);
      await this[kFail](payload);
    }
  }

  // The Runtime API's answer to the streamed request (null if it never got one).
  [kAnswer]() {
    return this.#answer || Promise.resolve(null);
  }
}

async function invokeStreaming(handler, headers, body) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  const stream = new ResponseStream(requestId, handler[HIGH_WATER_MARK]);
  const context = makeContext(headers, () => {});
  delete context.done;
  delete context.succeed;
  delete context.fail;
  inFlight = { requestId, stream };
  try {
    let event;
    try {
      event = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch (e) {
      throw new UserError('Runtime.UnmarshalError', `Unable to parse event: ${e.message}`);
    }
    const result = handler(event, stream, context);
    if (!result || typeof result.then !== 'function') throw new Error('Streaming does not support non-async handlers.');
    const value = await result;
    if (value !== undefined) console.warn('Streaming handlers ignore return values.');
    await stream[kClose]();
  } catch (error) {
    const payload = errorPayload(error === undefined || error === null ? 'undefined' : error);
    console.error(`Invoke Error \t${JSON.stringify(payload)}`);
    await stream[kFail](payload);
  }
  await stream[kAnswer]();
  if (inFlight && inFlight.stream === stream) inFlight = null;
}

function isStreaming(handler) {
  const mode = handler[STREAMING];
  if (mode === undefined || mode === null || mode === false) return false;
  if (mode === STREAM_RESPONSE) return true;
  throw new UserError('Runtime.MalformedStreamingHandler', 'Only response streaming is supported.');
}

function installGlobals() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = { streamifyResponse, HttpResponseStream };
}

function makeContext(headers, finish) {
  const deadline = Number(headers['lambda-runtime-deadline-ms'] || 0);
  const parse = (h) => (headers[h] ? JSON.parse(headers[h]) : undefined);
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: parse('lambda-runtime-cognito-identity'),
    clientContext: parse('lambda-runtime-client-context'),
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
  context.done = (error, result) => finish(error, result, true);
  context.succeed = (result) => finish(null, result, true);
  context.fail = (error) => finish(error || 'handled', undefined, true);
  return context;
}

let inFlight = null;

async function invoke(handler, headers, body, streaming) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  currentRequestId = requestId;
  if (headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  else delete process.env._X_AMZN_TRACE_ID;
  if (streaming) return invokeStreaming(handler, headers, body);
  return new Promise((resolve) => {
    let finished = false;
    const deliver = async (error, result) => {
      if (error !== null && error !== undefined) {
        const payload = errorPayload(error);
        console.error(`Invoke Error \t${JSON.stringify(payload)}`);
        await post(`/invocation/${requestId}/error`, JSON.stringify(payload), payload.errorType);
      } else {
        let text;
        try {
          text = JSON.stringify(result === undefined ? null : result);
        } catch (e) {
          const payload = { errorType: 'Runtime.MarshalError', errorMessage: `Unable to stringify response body: ${e.message}`, trace: [] };
          await post(`/invocation/${requestId}/error`, JSON.stringify(payload), payload.errorType);
          return resolve();
        }
        await post(`/invocation/${requestId}/response`, text);
      }
      resolve();
    };
    const finish = (error, result, fromCallback) => {
      if (finished) return;
      finished = true;
      inFlight = null;
      if (fromCallback && context.callbackWaitsForEmptyEventLoop) {
        // Lambda answers a callback once the event loop has nothing left to do.
        process.once('beforeExit', () => deliver(error, result));
      } else {
        deliver(error, result);
      }
    };
    const context = makeContext(headers, finish);
    inFlight = { requestId, finish };
    let event;
    try {
      event = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch (e) {
      return finish(new UserError('Runtime.UnmarshalError', `Unable to parse event: ${e.message}`), undefined, false);
    }
    try {
      const result = handler(event, context, (error, value) => finish(error, value, true));
      if (result && typeof result.then === 'function') {
        result.then((value) => finish(null, value, false), (error) => finish(error || 'undefined', undefined, false));
      } else if (handler.length < 3) {
        // A synchronous handler without a callback: its return value is the result.
        finish(null, result, false);
      }
    } catch (error) {
      finish(error, undefined, false);
    }
  });
}

async function main() {
  patchConsole();
  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  installGlobals();
  let handler;
  let streaming;
  try {
    handler = await loadHandler(appRoot, process.env._HANDLER || '');
    streaming = isStreaming(handler);
  } catch (error) {
    const payload = errorPayload(error);
    console.error(`${payload.errorType}: ${payload.errorMessage}`);
    await post('/init/error', JSON.stringify(payload), payload.errorType);
    process.exit(1);
  }
  const crash = (errorType) => async (error) => {
    const payload = errorPayload(error);
    payload.errorType = errorType || payload.errorType;
    console.error(`Uncaught Exception \t${JSON.stringify(payload)}`);
    const current = inFlight;
    if (current && current.stream) {
      // A streamed response ends with the error as trailers (never a second request).
      await current.stream[kFail](payload);
      await Promise.race([current.stream[kAnswer](), new Promise((resolve) => setTimeout(resolve, 2000))]);
    } else if (current) {
      await post(`/invocation/${current.requestId}/error`, JSON.stringify(payload), payload.errorType);
    }
    process.exit(129);
  };
  process.on('uncaughtException', crash());
  process.on('unhandledRejection', crash('Runtime.UnhandledPromiseRejection'));
  for (;;) {
    const next = await request('GET', '/invocation/next');
    if (next.status !== 200) throw new Error(`Runtime API /next answered ${next.status}`);
    await invoke(handler, next.headers, next.body, streaming);
  }
}

// Prime mode, before the hand-over: one request through the client against a server of
// this process's own. A Node process's first connection costs milliseconds (the resolver's
// set-up, the first runs of the net and stream code: ~4 ms here), which the environment's
// cold start would otherwise pay. The server takes one connection (the spare is on the
// host's network: any local process could connect) and answers only the warm-up's own;
// whatever happens, nothing of it is left open, and it is given up after a second.
async function warmUp() {
  const accepted = new Set();
  const warmClient = new RuntimeClient('');
  const server = net.createServer((socket) => {
    server.close();
    accepted.add(socket);
    socket.on('error', () => {});
    socket.on('data', () => {
      const own = warmClient.socket && socket.remotePort === warmClient.socket.localPort;
      if (own) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      else socket.destroy();
    });
  });
  let timer;
  const warm = (async () => {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    warmClient.address = `127.0.0.1:${server.address().port}`;
    await warmClient.request('GET', '/invocation/next');
  })();
  // Settled after the race too (the timer won): not an unhandled rejection.
  warm.catch(() => {});
  try {
    await Promise.race([warm, new Promise((resolve) => { timer = setTimeout(resolve, 1000); })]);
  } catch (error) {
    // Only a warm-up: the environment starts the same without it.
  } finally {
    clearTimeout(timer);
    warmClient.drop();
    for (const socket of accepted) socket.destroy();
    server.close();
  }
}

async function start() {
  if (process.env._GUST_HANDOVER_FD !== undefined) {
    await warmUp();
    awaitHandOver(Number(process.env._GUST_HANDOVER_FD));
  }
  apiAddress = process.env.AWS_LAMBDA_RUNTIME_API;
  await main();
}

start().catch((error) => {
  process.stderr.write(`runtime failure: ${error && error.stack}\n`);
  process.exit(1);
});
