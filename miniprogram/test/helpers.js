// Shared by the tests that talk to the real server started in server-setup.js.
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

module.exports = { loggedInClient, nextEvent, stateWhere, isOpen };
