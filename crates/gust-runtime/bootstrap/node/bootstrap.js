// Gust's Node.js runtime: a Lambda Runtime API client with Lambda's handler contract.
// No npm dependencies. Started as `node bootstrap.js` in the function's code directory with
// the Lambda environment variables set; loads `_HANDLER` once (INIT), then serves
// invocations from AWS_LAMBDA_RUNTIME_API until the process is stopped.
'use strict';

const net = require('net');
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const util = require('util');

const apiAddress = process.env.AWS_LAMBDA_RUNTIME_API;
const [apiHost, apiPort] = apiAddress.split(':');
const PREFIX = '/2018-06-01/runtime';
let currentRequestId = '';

// One keep-alive HTTP/1.1 connection to the Runtime API. A small client of its own rather
// than Node's http module, which costs more per request than the whole round trip. The
// socket is unref'd between requests, so an otherwise empty event loop can end (that is
// how callback handlers wait for it).
class RuntimeClient {
  constructor() {
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.waiting = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: apiHost, port: Number(apiPort) }, () => resolve(socket));
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
  const importFile = async (f) => import(pathToFileURL(f).href);
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
    if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(file)) {
      throw new UserError('Runtime.ImportModuleError', `Error: Cannot find module '${file}'`, error);
    }
    throw new UserError('Runtime.ImportModuleError', `${error && error.name}: ${error && error.message}`, error);
  }
  let handler = mod;
  for (const part of handlerPath.split('.')) {
    handler = handler === undefined || handler === null ? undefined : handler[part];
  }
  if (handler === undefined) throw new UserError('Runtime.HandlerNotFound', `${spec} is undefined or not exported`);
  if (typeof handler !== 'function') throw new UserError('Runtime.HandlerNotFound', `${spec} is not a function`);
  return handler;
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

async function invoke(handler, headers, body) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  currentRequestId = requestId;
  if (headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  else delete process.env._X_AMZN_TRACE_ID;
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
  let handler;
  try {
    handler = await loadHandler(appRoot, process.env._HANDLER || '');
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
    if (inFlight) await post(`/invocation/${inFlight.requestId}/error`, JSON.stringify(payload), payload.errorType);
    process.exit(129);
  };
  process.on('uncaughtException', crash());
  process.on('unhandledRejection', crash('Runtime.UnhandledPromiseRejection'));
  for (;;) {
    const next = await request('GET', '/invocation/next');
    if (next.status !== 200) throw new Error(`Runtime API /next answered ${next.status}`);
    await invoke(handler, next.headers, next.body);
  }
}

main().catch((error) => {
  process.stderr.write(`runtime failure: ${error && error.stack}\n`);
  process.exit(1);
});
