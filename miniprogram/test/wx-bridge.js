// The parts of the `wx` API the mini-program uses, bridged onto node: wx.connectSocket onto
// the `ws` WebSocket, wx.request onto fetch, storage onto a Map. `net` lets a test cut the
// network (down: new sockets and requests fail), make it deaf (frames from the server are
// lost) or silent (frames are lost both ways), and counts the sockets alive at once.
const fs = require('fs');
const WebSocket = require('ws');

class SocketTask {
  constructor({ url, header, fail }, net) {
    this._net = net;
    this._handlers = { open: [], message: [], close: [], error: [] };
    this.alive = true;
    net.sockets.push(this);
    net.alive += 1;
    net.maxAlive = Math.max(net.maxAlive, net.alive);
    if (net.down) {
      // As on a phone without network: the task fails, then reports itself closed.
      setTimeout(() => {
        if (fail) fail({ errMsg: 'connectSocket:fail network down' });
        this._emit('error', { errMsg: 'network down' });
        this._closed(1006, '');
      }, 0);
      return;
    }
    this.ws = new WebSocket(url, { headers: header });
    this.ws.on('open', () => this._emit('open', { header: {} }));
    this.ws.on('message', (data) => {
      if (net.deaf || net.silent) {
        net.lost += 1;
        return;
      }
      this._emit('message', { data: data.toString() });
    });
    this.ws.on('error', (error) => this._emit('error', { errMsg: error.message }));
    this.ws.on('close', (code, reason) => this._closed(code, reason.toString()));
  }

  send({ data }) {
    this.sent = (this.sent || []).concat(data);
    if (this._net.silent || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(data);
  }

  close({ code = 1000, reason = '' } = {}) {
    if (!this.ws) return;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
  }

  onOpen(handler) {
    this._handlers.open.push(handler);
  }

  onMessage(handler) {
    this._handlers.message.push(handler);
  }

  onClose(handler) {
    this._handlers.close.push(handler);
  }

  onError(handler) {
    this._handlers.error.push(handler);
  }

  _closed(code, reason) {
    if (!this.alive) return;
    this.alive = false;
    this._net.alive -= 1;
    this._emit('close', { code, reason });
  }

  _emit(kind, payload) {
    this._handlers[kind].forEach((handler) => handler(payload));
  }
}

function request(net, { url, method = 'GET', data, header = {}, success, fail }) {
  if (net.down) {
    setTimeout(() => fail({ errMsg: 'request:fail network down' }), 0);
    return;
  }
  // As wx.request: an ArrayBuffer goes as it is, anything else as JSON; the caller's
  // Content-Type wins over the default.
  const binary = data instanceof ArrayBuffer;
  const json = data === undefined || method === 'GET' ? undefined : JSON.stringify(data);
  const body = binary ? Buffer.from(data) : json;
  const headers = { 'content-type': 'application/json' };
  Object.keys(header).forEach((key) => (headers[key.toLowerCase()] = header[key]));
  fetch(url, { method, body, headers })
    .then(async (response) => {
      const text = await response.text();
      let parsed = text;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        // wx.request hands non-JSON bodies over as strings.
      }
      success({ statusCode: response.status, data: parsed, header: Object.fromEntries(response.headers) });
    })
    .catch((error) => fail({ errMsg: `request:fail ${error.message}` }));
}

/** A fresh `wx` with its own storage and network switches (`wx.net`). */
function createWx() {
  const net = { down: false, deaf: false, silent: false, lost: 0, sockets: [], alive: 0, maxAlive: 0 };
  const storage = new Map();
  return {
    net,
    connectSocket: (options) => new SocketTask(options, net),
    request: (options) => request(net, options),
    login: ({ success }) => setTimeout(() => success({ code: 'simulated-code', errMsg: 'login:ok' }), 0),
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    removeStorageSync: (key) => storage.delete(key),
    // Temporary files (a chosen avatar) are read from this machine's disk.
    getFileSystemManager: () => ({
      readFile: ({ filePath, success, fail }) =>
        fs.readFile(filePath, (error, data) =>
          error
            ? fail({ errMsg: `readFile:fail ${error.message}` })
            : success({ data: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }),
        ),
    }),
    toasts: [],
    showToast(options) {
      this.toasts.push(options.title);
    },
  };
}

module.exports = { createWx };
