// Response streaming in Gust's Node.js bootstrap, without the server: a fake Runtime API
// (Node's http server, which reads chunked bodies and trailers) hands out events, and the
// real bootstrap.js runs handlers against it.
//
//   node --test crates/gust-runtime/bootstrap/node/test/streaming.test.js
//
// `cargo test -p gust-runtime` runs this when `node` is on PATH. Set RUST_STREAM_BIN
// (or build target/debug/stream: `cargo build -p rust-echo`) to also run the lambda_runtime test function.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

const BOOTSTRAP = path.resolve(__dirname, '..', 'bootstrap.js');
const REPO = path.resolve(__dirname, '..', '..', '..', '..', '..');
const PREFIX = '/2018-06-01/runtime';

// ---- the fake Runtime API ------------------------------------------------------------

class FakeRuntimeApi {
  constructor() {
    this.events = [];
    this.polls = [];
    this.pending = new Map();
    this.initError = null;
    this.connections = 0;
    this.server = http.createServer((req, res) => this.route(req, res));
    this.server.keepAliveTimeout = 0;
    this.server.requestTimeout = 0;
    this.server.on('connection', () => { this.connections += 1; });
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${this.server.address().port}`;
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }

  // Queues an event; resolves with what the runtime posted for it.
  invoke(event) {
    const id = crypto.randomUUID();
    const result = new Promise((resolve) => this.pending.set(id, resolve));
    const body = Buffer.from(JSON.stringify(event));
    const poll = this.polls.shift();
    if (poll) this.deliver(poll, id, body);
    else this.events.push({ id, body });
    return result;
  }

  deliver(res, id, body) {
    res.writeHead(200, {
      'Lambda-Runtime-Aws-Request-Id': id,
      'Lambda-Runtime-Deadline-Ms': String(Date.now() + 30000),
      'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:000000000000:function:f',
      'Content-Type': 'application/json',
      'Content-Length': body.length,
    });
    res.end(body);
  }

  route(req, res) {
    if (req.method === 'GET' && req.url === `${PREFIX}/invocation/next`) {
      const event = this.events.shift();
      if (event) this.deliver(res, event.id, event.body);
      else this.polls.push(res);
      return;
    }
    const started = Date.now();
    const chunks = [];
    req.on('data', (data) => chunks.push({ at: Date.now(), data }));
    req.on('end', () => {
      const ended = Date.now();
      const body = Buffer.concat(chunks.map((c) => c.data));
      const answer = JSON.stringify({ status: 'OK' });
      res.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': answer.length });
      res.end(answer);
      if (req.url === `${PREFIX}/init/error`) {
        this.initError = { headers: req.headers, body };
        return;
      }
      const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(req.url);
      const resolve = match && this.pending.get(match[1]);
      if (!resolve) return;
      this.pending.delete(match[1]);
      resolve({ kind: match[2], headers: req.headers, trailers: req.trailers, chunks, body, started, ended });
    });
  }
}

// Starts `command` (the bootstrap by default) against a fresh fake API; `run` drives it.
async function withRuntime(files, handler, run, command) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-node-stream-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const api = new FakeRuntimeApi();
  const address = await api.listen();
  const [program, ...args] = command || [process.execPath, BOOTSTRAP];
  const child = spawn(program, args, {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      AWS_LAMBDA_RUNTIME_API: address,
      _HANDLER: handler,
      LAMBDA_TASK_ROOT: dir,
      AWS_LAMBDA_FUNCTION_NAME: 'f',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/f',
      AWS_LAMBDA_LOG_STREAM_NAME: 'stream',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  // Log lines travel on the child's stdout, not with the response: wait for them.
  const waitFor = async (pattern) => {
    for (let waited = 0; !pattern.test(output); waited += 10) {
      if (waited > 5000) assert.fail(`no log line matching ${pattern}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  try {
    await run(api, { exited, output: () => output, waitFor });
  } catch (error) {
    error.message += `\n--- runtime output ---\n${output}`;
    throw error;
  } finally {
    child.kill('SIGKILL');
    await exited;
    await api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function decodeErrorBody(trailers) {
  return JSON.parse(Buffer.from(trailers['lambda-runtime-function-error-body'], 'base64').toString('utf8'));
}

function assertStreamingHeaders(posted, contentType) {
  assert.equal(posted.kind, 'response');
  assert.equal(posted.headers['lambda-runtime-function-response-mode'], 'streaming');
  assert.equal(posted.headers['transfer-encoding'], 'chunked');
  assert.equal(posted.headers['content-length'], undefined);
  assert.equal(posted.headers.trailer, 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body');
  assert.equal(posted.headers['content-type'], contentType);
}

function assertNoError(posted) {
  assert.deepEqual(posted.trailers, {});
}

// ---- the handlers --------------------------------------------------------------------

const HANDLERS = `
const { pipeline } = require('node:stream/promises');
const { Readable, once } = require('node:stream');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const streamify = awslambda.streamifyResponse; // the global exists before the module loads

exports.handler = streamify(async (event, stream, context) => {
  switch (event.case) {
    case 'slow':
      stream.write('first');
      await sleep(300);
      stream.write('second');
      stream.end();
      return;
    case 'content-type':
      stream.setContentType('text/plain; charset=utf-8');
      stream.write('hi');
      stream.end();
      return;
    case 'http': {
      const s = awslambda.HttpResponseStream.from(stream, {
        statusCode: 201, headers: { 'x-custom': 'yes' }, cookies: ['a=b'],
      });
      s.write('body-');
      await sleep(50);
      s.end(Buffer.from('end'));
      return;
    }
    case 'http-end-only':
      awslambda.HttpResponseStream.from(stream, { statusCode: 404 }).end('Not Found');
      return;
    case 'http-empty':
      awslambda.HttpResponseStream.from(stream, { statusCode: 204 }).end();
      return;
    case 'fail-after-write':
      stream.write('partial');
      await sleep(100);
      throw new TypeError('boom');
    case 'fail-before-write':
      throw new Error('early');
    case 'reject-string':
      stream.write('x');
      return Promise.reject('plain string');
    case 'no-end':
      stream.write('unended');
      return;
    case 'nothing':
      return;
    case 'pipeline':
      await pipeline(Readable.from(['a', 'b', 'c']), stream);
      return;
    case 'pipeline-error': {
      async function* source() { yield 'ok '; await sleep(20); throw new Error('source broke'); }
      await pipeline(Readable.from(source()), stream);
      return;
    }
    case 'too-late':
      stream.write('x');
      try { stream.setContentType('text/html'); } catch (e) { stream.end(' ' + e.name + ': ' + e.message); }
      return;
    case 'object':
      stream.write({ a: 1 });
      stream.end();
      return;
    case 'big': {
      const piece = Buffer.alloc(65536);
      for (let i = 0; i < 80; i += 1) {
        piece.fill(i % 251);
        if (!stream.write(Buffer.from(piece))) await once(stream, 'drain');
      }
      stream.end();
      return;
    }
    case 'context':
      stream.end(JSON.stringify({
        requestId: context.awsRequestId, done: typeof context.done, remaining: context.getRemainingTimeInMillis() > 0,
        name: context.functionName,
      }));
      return;
    case 'return-value':
      stream.end('x');
      return { ignored: true };
    case 'uncaught':
      stream.write('before');
      setTimeout(() => { throw new RangeError('async boom'); }, 50);
      await sleep(10000);
      return;
    default:
      throw new Error('unknown case ' + event.case);
  }
});

exports.sync = awslambda.streamifyResponse((event, stream) => { stream.write('sync'); });
exports.buffered = async (event) => ({ buffered: event });
exports.hwm = awslambda.streamifyResponse(async (event, stream) => {
  stream.end(String(stream.writableHighWaterMark));
}, { highWaterMark: 1024 });
const bogus = async () => {};
bogus[Symbol.for('aws.lambda.runtime.handler.streaming')] = 'request';
exports.bogus = bogus;
`;

const ESM_HANDLER = `
export const handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('application/json');
  stream.end(JSON.stringify({ esm: true }));
});
`;

// ---- the tests -------------------------------------------------------------------------

test('streaming handlers, one runtime process, invocation after invocation', async (t) => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.handler', async (api, runtime) => {
    await t.test('every write goes out at once: the first chunk arrives before the handler ends', async () => {
      const posted = await api.invoke({ case: 'slow' });
      assertStreamingHeaders(posted, 'application/octet-stream');
      assertNoError(posted);
      assert.equal(posted.body.toString(), 'firstsecond');
      assert.equal(posted.chunks[0].data.toString(), 'first');
      const first = posted.chunks[0].at;
      const last = posted.chunks[posted.chunks.length - 1].at;
      assert.ok(last - first >= 250, `chunks ${last - first} ms apart`);
      assert.ok(posted.ended - first >= 250, `first chunk only ${posted.ended - first} ms before the end`);
    });

    await t.test('setContentType before the first write', async () => {
      const posted = await api.invoke({ case: 'content-type' });
      assertStreamingHeaders(posted, 'text/plain; charset=utf-8');
      assert.equal(posted.body.toString(), 'hi');
    });

    await t.test('setContentType after a write throws Runtime.InvalidStreamingOperation', async () => {
      const posted = await api.invoke({ case: 'too-late' });
      assertStreamingHeaders(posted, 'application/octet-stream');
      assert.equal(posted.body.toString(), 'x Runtime.InvalidStreamingOperation: Cannot set content-type, too late.');
    });

    await t.test('HttpResponseStream.from: JSON prelude, 8 NUL bytes, then the body', async () => {
      const posted = await api.invoke({ case: 'http' });
      assertStreamingHeaders(posted, 'application/vnd.awslambda.http-integration-response');
      assertNoError(posted);
      const prelude = JSON.stringify({ statusCode: 201, headers: { 'x-custom': 'yes' }, cookies: ['a=b'] });
      const expected = Buffer.concat([Buffer.from(prelude), Buffer.alloc(8), Buffer.from('body-end')]);
      assert.deepEqual(posted.body, expected);
    });

    await t.test('HttpResponseStream.from then end(data) or end() still sends the prelude', async () => {
      let posted = await api.invoke({ case: 'http-end-only' });
      assert.deepEqual(posted.body, Buffer.concat([Buffer.from('{"statusCode":404}'), Buffer.alloc(8), Buffer.from('Not Found')]));
      posted = await api.invoke({ case: 'http-empty' });
      assertStreamingHeaders(posted, 'application/vnd.awslambda.http-integration-response');
      assert.deepEqual(posted.body, Buffer.concat([Buffer.from('{"statusCode":204}'), Buffer.alloc(8)]));
    });

    await t.test('an error after a write ends the request with error trailers', async () => {
      const posted = await api.invoke({ case: 'fail-after-write' });
      assertStreamingHeaders(posted, 'application/octet-stream');
      assert.equal(posted.body.toString(), 'partial');
      assert.equal(posted.trailers['lambda-runtime-function-error-type'], 'TypeError');
      const error = decodeErrorBody(posted.trailers);
      assert.equal(error.errorType, 'TypeError');
      assert.equal(error.errorMessage, 'boom');
      assert.ok(Array.isArray(error.trace) && error.trace[0].startsWith('TypeError: boom'));
      await runtime.waitFor(/\tERROR\tInvoke Error \t\{"errorType":"TypeError","errorMessage":"boom"/);
    });

    await t.test('an error before any write: empty body, error trailers, still a streamed response', async () => {
      const posted = await api.invoke({ case: 'fail-before-write' });
      assertStreamingHeaders(posted, 'application/octet-stream');
      assert.equal(posted.body.length, 0);
      assert.equal(posted.trailers['lambda-runtime-function-error-type'], 'Error');
      assert.equal(decodeErrorBody(posted.trailers).errorMessage, 'early');
    });

    await t.test('a rejection with a non-Error value', async () => {
      const posted = await api.invoke({ case: 'reject-string' });
      assert.equal(posted.body.toString(), 'x');
      assert.equal(posted.trailers['lambda-runtime-function-error-type'], 'string');
      assert.equal(decodeErrorBody(posted.trailers).errorMessage, 'plain string');
    });

    await t.test('a stream the handler leaves open is ended when its promise resolves', async () => {
      let posted = await api.invoke({ case: 'no-end' });
      assertNoError(posted);
      assert.equal(posted.body.toString(), 'unended');
      posted = await api.invoke({ case: 'nothing' });
      assertStreamingHeaders(posted, 'application/octet-stream');
      assertNoError(posted);
      assert.equal(posted.body.length, 0);
    });

    await t.test('stream.pipeline into the response stream', async () => {
      const posted = await api.invoke({ case: 'pipeline' });
      assertNoError(posted);
      assert.equal(posted.body.toString(), 'abc');
    });

    await t.test('a failing pipeline source fails the response after what was sent', async () => {
      const posted = await api.invoke({ case: 'pipeline-error' });
      assert.equal(posted.body.toString(), 'ok ');
      assert.equal(decodeErrorBody(posted.trailers).errorMessage, 'source broke');
    });

    await t.test('objects are written as JSON', async () => {
      const posted = await api.invoke({ case: 'object' });
      assert.equal(posted.body.toString(), '{"a":1}');
    });

    await t.test('5 MiB with backpressure arrives intact', async () => {
      const posted = await api.invoke({ case: 'big' });
      assertNoError(posted);
      assert.equal(posted.body.length, 80 * 65536);
      for (let i = 0; i < 80; i += 1) assert.equal(posted.body[i * 65536 + 100], i % 251);
    });

    await t.test('the context, without the callback methods; return values are ignored', async () => {
      let posted = await api.invoke({ case: 'context' });
      const context = JSON.parse(posted.body.toString());
      assert.equal(context.done, 'undefined');
      assert.equal(context.remaining, true);
      assert.equal(context.name, 'f');
      assert.match(context.requestId, /^[0-9a-f-]{36}$/);
      posted = await api.invoke({ case: 'return-value' });
      assert.equal(posted.body.toString(), 'x');
      assertNoError(posted);
      await runtime.waitFor(/\tWARN\tStreaming handlers ignore return values\./);
    });

    await t.test('the streamed responses reused the one keep-alive connection', async () => {
      assert.equal(api.connections, 1);
    });
  });
});

test('an uncaught exception mid-stream ends the response with trailers and the process', async () => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.handler', async (api, runtime) => {
    const posted = await api.invoke({ case: 'uncaught' });
    assert.equal(posted.body.toString(), 'before');
    assert.equal(posted.trailers['lambda-runtime-function-error-type'], 'RangeError');
    assert.equal(decodeErrorBody(posted.trailers).errorMessage, 'async boom');
    assert.equal(await runtime.exited, 129);
  });
});

test('a streaming handler that does not return a promise fails', async () => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.sync', async (api) => {
    const posted = await api.invoke({});
    assertStreamingHeaders(posted, 'application/octet-stream');
    assert.equal(posted.body.toString(), 'sync');
    assert.equal(decodeErrorBody(posted.trailers).errorMessage, 'Streaming does not support non-async handlers.');
  });
});

test('streamifyResponse options.highWaterMark sizes the stream', async () => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.hwm', async (api) => {
    const posted = await api.invoke({});
    assert.equal(posted.body.toString(), '1024');
  });
});

test('an ES module handler sees the awslambda global', async () => {
  await withRuntime({ 'index.mjs': ESM_HANDLER }, 'index.handler', async (api) => {
    const posted = await api.invoke({});
    assertStreamingHeaders(posted, 'application/json');
    assert.equal(posted.body.toString(), '{"esm":true}');
  });
});

test('non-streaming handlers post one buffered response, as before', async () => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.buffered', async (api) => {
    for (const n of [1, 2]) {
      const posted = await api.invoke({ n });
      assert.equal(posted.kind, 'response');
      assert.equal(posted.headers['lambda-runtime-function-response-mode'], undefined);
      assert.equal(posted.headers['transfer-encoding'], undefined);
      assert.equal(posted.headers['content-length'], String(posted.body.length));
      assert.deepEqual(JSON.parse(posted.body.toString()), { buffered: { n } });
    }
  });
});

test('an unknown streaming mode is an init error', async () => {
  await withRuntime({ 'index.js': HANDLERS }, 'index.bogus', async (api, runtime) => {
    assert.equal(await runtime.exited, 1);
    assert.equal(api.initError.headers['lambda-runtime-function-error-type'], 'Runtime.MalformedStreamingHandler');
    assert.equal(JSON.parse(api.initError.body.toString()).errorMessage, 'Only response streaming is supported.');
  });
});

// The official Rust runtime's streaming mode against the same fake API: what Gust's
// server must accept from it (built by `cargo build --workspace --all-targets`).
const rustStream = process.env.RUST_STREAM_BIN || path.join(REPO, 'target', 'debug', 'stream');
test('lambda_runtime (Rust) streaming test function', { skip: !fs.existsSync(rustStream) && `no ${rustStream}` }, async () => {
  await withRuntime({}, 'bootstrap', async (api) => {
    const prelude = Buffer.concat([
      Buffer.from('{"statusCode":200,"headers":{"content-type":"text/plain"},"cookies":[]}'),
      Buffer.alloc(8),
    ]);
    let posted = await api.invoke({});
    assertStreamingHeaders(posted, 'application/vnd.awslambda.http-integration-response');
    assert.deepEqual(posted.body, Buffer.concat([prelude, Buffer.from('chunk-0\nchunk-1\nchunk-2\n')]));
    const first = posted.chunks.find((c) => c.data.includes('chunk-0')).at;
    assert.ok(posted.ended - first >= 300, `first chunk only ${posted.ended - first} ms before the end`);
    assertNoError(posted);
    // lambda_runtime 1.x reports a mid-stream error as text in the body, not as trailers.
    posted = await api.invoke({ fail: true });
    assert.deepEqual(posted.body.subarray(0, prelude.length + 8), Buffer.concat([prelude, Buffer.from('chunk-0\n')]));
    const tail = posted.body.subarray(prelude.length + 8).toString();
    assert.match(tail, /^Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: \S+\r\n$/);
    assertNoError(posted);
  }, [rustStream]);
});
