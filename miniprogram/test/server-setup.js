// Starts a real wxgpt server for the suite: tests/miniprogram_server.py builds a tiny GPT-2,
// serves it with development login on a temp SQLite file and prints its address once
// /readyz answers. The address reaches the tests through WXGPT_TEST_URL, the file that gates
// the model's forward passes (open at first; test/helpers.js) through WXGPT_TEST_GATE_FILE.
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');
const STARTUP_MS = 120000;

module.exports = async function startServer() {
  const python = process.env.WXGPT_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
  const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wxgpt-gate-')), 'forward.gate');
  fs.writeFileSync(gate, 'open');
  process.env.WXGPT_TEST_GATE_FILE = gate;
  const child = spawn(python, ['-m', 'tests.miniprogram_server'], {
    cwd: REPO,
    env: { ...process.env, PYTHONPATH: REPO },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  globalThis.wxgptServer = child;
  const log = [];
  child.stderr.on('data', (chunk) => log.push(chunk.toString()));
  process.env.WXGPT_TEST_URL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wxgpt test server not ready after ${STARTUP_MS} ms:\n${log.join('')}`)), STARTUP_MS);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk.toString();
      const match = /WXGPT_TEST_SERVER (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wxgpt test server (${python}) exited with ${code}:\n${log.join('')}`));
    });
  });
};
