// Shared by the tests that talk to the real server started in server-setup.js.
const fs = require('fs');
const path = require('path');
const { Api } = require('../utils/api');
const { ChatClient } = require('../utils/chat-client');
const { createWx } = require('./wx-bridge');

const BASE_URL = () => process.env.WXGPT_TEST_URL;
let users = 0;

/** A fresh bridged `wx`, a newly logged-in user's Api, and a ChatClient for them. */
async function loggedInClient(options = {}) {
  global.wx = createWx();
  users += 1;
  const api = new Api({ baseUrl: BASE_URL(), devLoginWid: `jest-${process.pid}-${users}-${Date.now()}` });
  await api.login();
  const client = new ChatClient({
    url: `${BASE_URL().replace(/^http/, 'ws')}/ws/chat`,
    getToken: () => api.token,
    ...options,
  });
  return { api, client, net: global.wx.net };
}

/** Resolves with the first `event` payload that satisfies `accept`. */
function nextEvent(emitter, event, accept = () => true, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching '${event}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = emitter.on(event, (payload) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Resolves with the client's state once `accept(state)` holds (now or later). */
function stateWhere(client, accept, timeoutMs) {
  if (accept(client.state)) return Promise.resolve(client.state);
  return nextEvent(client, 'state', accept, timeoutMs);
}

const isOpen = (state) => state.connection === 'open';

// Forward passes that surely bring one more piece of a reply: each of the tiny model's tokens
// shows at least one character, and the server releases pieces of 8 (tests/miniprogram_server.py).
const PIECE_PASSES = 8;

/**
 * The model's pace in the test's hands, as tests/pace.py's StepFile: the server's forward
 * passes wait until the gate file allows them; it counts them, and the stop flags set, in
 * sibling files. A test holds the model mid-reply and opens the gate again before it ends.
 */
const gate = {
  file(suffix) {
    const gatePath = process.env.WXGPT_TEST_GATE_FILE;
    return suffix ? path.join(path.dirname(gatePath), path.basename(gatePath, '.gate') + suffix) : gatePath;
  },
  write(value) {
    fs.writeFileSync(this.file('.tmp'), value);
    fs.renameSync(this.file('.tmp'), this.file());
  },
  read(suffix) {
    try {
      return Number(fs.readFileSync(this.file(suffix), 'utf8')) || 0;
    } catch {
      return 0;
    }
  },
  /** Let the server run `steps` forward passes beyond those it has run. */
  allowMore(steps) {
    this.write(String(this.read('.count') + steps));
  },
  open() {
    this.write('open');
  },
  /** How many replies have had their stop flag set in the server. */
  cancels() {
    return this.read('.cancels');
  },
  /** Resolves once `count` replies have had their stop flag set in the server. */
  untilCancels(count, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => {
        if (this.cancels() >= count) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() > deadline) {
          clearInterval(poll);
          reject(new Error(`${this.cancels()} stop flags within ${timeoutMs} ms, not ${count}`));
        }
      }, 5);
    });
  },
};

module.exports = { loggedInClient, nextEvent, stateWhere, isOpen, gate, PIECE_PASSES };
