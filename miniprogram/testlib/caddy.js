// Starts a real Caddy with wechat_auth in sandbox mode in front of a tiny
// echo upstream, for the integration test.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');

function isFile(p) {
  try { return fs.statSync(p).isFile(); } catch { return false; }
}

// $WECHAT_AUTH_CADDY, else <repo>/caddy, else build it with <repo>/xcaddy.sh
// (a cold build takes 3-4 minutes).
async function findCaddy() {
  const fromEnv = process.env.WECHAT_AUTH_CADDY;
  if (fromEnv) {
    if (!isFile(fromEnv)) throw new Error(`WECHAT_AUTH_CADDY=${fromEnv} is not a file`);
    return fromEnv;
  }
  const bin = path.join(REPO, 'caddy');
  if (isFile(bin)) return bin;
  const script = path.join(REPO, 'xcaddy.sh');
  if (!isFile(script)) {
    throw new Error(`no Caddy binary: set WECHAT_AUTH_CADDY, or build ${bin} with ${script} build (script not found)`);
  }
  const { status, output } = await new Promise((resolve) => {
    let out = '';
    const child = spawn('bash', [script, 'build'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('error', (e) => resolve({ status: String(e), output: out }));
    child.on('exit', (code, signal) => resolve({ status: code === null ? signal : code, output: out }));
  });
  if (status !== 0 || !isFile(bin)) {
    throw new Error(`${script} build failed (${status}):\n${output.slice(-4000)}`);
  }
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Answers every request with what it received, as JSON, so a test can see
// the headers Caddy passed on.
function startUpstream() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// Returns {baseURL, stop(), logs()}. stop() is safe to call more than once.
async function startCaddy() {
  const bin = await findCaddy();
  const upstream = await startUpstream();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wechat-auth-mp-'));
  const port = await freePort();
  const signingKey = crypto.randomBytes(20).toString('hex'); // 40 chars
  const caddyfile = path.join(dir, 'Caddyfile');
  fs.writeFileSync(caddyfile, `{
	admin off
	auto_https off
	storage file_system "${path.join(dir, 'storage')}"
}

http://127.0.0.1:${port} {
	wechat_auth {
		sandbox
		signing_key "${signingKey}"
	}
	reverse_proxy 127.0.0.1:${upstream.address().port}
}
`);

  return runCaddy(bin, caddyfile, dir, `http://127.0.0.1:${port}`, () => new Promise((resolve) => upstream.close(resolve)));
}

// Runs `caddy run` on caddyfile with HOME and XDG dirs under dir (so its
// storage is its own), waits until baseURL answers, and returns
// {baseURL, stop(), logs()}. stop() is safe to call more than once; it stops
// Caddy, calls cleanup() and removes dir.
async function runCaddy(bin, caddyfile, dir, baseURL, cleanup = async () => {}) {
  let output = '';
  const child = spawn(bin, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.assign({}, process.env, {
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_DATA_HOME: path.join(dir, 'data'),
    }),
  });
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 200000) output = output.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitedPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve();
  }));
  // Never leave Caddy running: not on a normal exit, nor when the test
  // process is interrupted or timed out by a signal.
  const killOnExit = () => child.kill('SIGKILL');
  const killOnSignal = (sig) => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    process.removeListener('SIGINT', killOnSignal);
    process.removeListener('SIGTERM', killOnSignal);
    process.kill(process.pid, sig);
  };
  process.on('exit', killOnExit);
  process.on('SIGINT', killOnSignal);
  process.on('SIGTERM', killOnSignal);

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    process.removeListener('SIGINT', killOnSignal);
    process.removeListener('SIGTERM', killOnSignal);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedPromise;
      clearTimeout(timer);
    }
    await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`caddy exited (${JSON.stringify(exited)}) before answering:\n${output.slice(-4000)}`);
    }
    try {
      await get(baseURL + '/');
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`caddy did not answer on ${baseURL} within 30 s:\n${output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { baseURL, stop, logs: () => output };
}

// A plain HTTP call, not through the helper: what any client could send.
function rawRequest(baseURL, method, urlPath, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.authorization = 'Bearer ' + token;
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const req = http.request(baseURL + urlPath, { method, headers, agent: false, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let data = text;
        try { data = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ statusCode: res.statusCode, data, header: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Runs the repository's Caddyfile.example, unchanged, on its own ports
// (127.0.0.1:8080, 8081, admin 2019), with storage in a temporary HOME.
async function startDemo() {
  const bin = await findCaddy();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wechat-auth-demo-'));
  return runCaddy(bin, path.join(REPO, 'Caddyfile.example'), dir, 'http://127.0.0.1:8080');
}

// Resolves to the first of ports that is taken on 127.0.0.1, or null.
async function busyPort(ports) {
  for (const port of ports) {
    const taken = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(true));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
    });
    if (taken) return port;
  }
  return null;
}

module.exports = { startCaddy, startDemo, busyPort, rawRequest, findCaddy };
