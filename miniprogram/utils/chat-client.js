// The app's one chat socket to wxgpt's /ws/chat: heartbeat, reconnect with backoff, and a
// reply that survives a dropped socket (resume, or the same chat sent again). Plain JS with
// no page in sight: pages listen to its events and render `state`.
//
// Events: 'state' (a snapshot after every change), 'frame' (each server frame as received),
// 'reply-end' (a reply left the stage: status done | stopped | interrupted | failed | blocked),
// 'reconnect' ({attempt, delayMs} when a reconnect is scheduled).

const { Emitter } = require('./emitter');
const { backoffDelay } = require('./backoff');
const { uuid4 } = require('./uuid');
const { codePointLength } = require('./text');
const { errorWords } = require('./errors');

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_BANNED = 4403;

const DEFAULTS = {
  heartbeatMs: 20000,
  pongTimeoutMs: 10000,
  backoff: { baseMs: 1000, maxMs: 30000 },
};

/** How an `error` frame ends the running reply. */
function endingOf(code, messageId) {
  if (code === 'content_blocked') return 'blocked';
  // A resume that finds nothing means the reply is gone for good.
  if (code === 'not_found' && messageId) return 'interrupted';
  return 'failed';
}

class ChatClient extends Emitter {
  /**
   * url: the wss:// address of /ws/chat; getToken: returns the login token or '';
   * connectSocket defaults to wx.connectSocket; random feeds the backoff jitter.
   */
  constructor({
    url,
    getToken,
    connectSocket = (options) => wx.connectSocket(options),
    random = Math.random,
    heartbeatMs = DEFAULTS.heartbeatMs,
    pongTimeoutMs = DEFAULTS.pongTimeoutMs,
    backoff = DEFAULTS.backoff,
  }) {
    super();
    this._url = url;
    this._getToken = getToken;
    this._connectSocket = connectSocket;
    this._random = random;
    this._heartbeatMs = heartbeatMs;
    this._pongTimeoutMs = pongTimeoutMs;
    this._backoff = backoff;
    this._task = null;
    this._wanted = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._heartbeatTimer = null;
    this._pongTimer = null;
    this._state = {
      // closed | connecting | open | reconnecting | unauthorized | banned
      connection: 'closed',
      retry: null,
      user: null,
      // bought replies left, and today's free replies left (spent first)
      quota: null,
      free: null,
      reply: null,
      error: null,
    };
  }

  /** A copy of the current state: connection, retry, user, quota, free, reply, error. */
  get state() {
    const reply = this._state.reply;
    return { ...this._state, reply: reply && { ...reply } };
  }

  /** Keep a socket open from now on (the app calls it on show and after login). */
  open() {
    this._wanted = true;
    if (!this._task && !this._retryTimer) this._connect();
  }

  /** Close the socket and stop reconnecting (on hide, on logout). A reply in flight is
   * kept, so the next open() resumes it. */
  close() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._attempt = 0;
    this._drop();
    this._set({ connection: 'closed', retry: null });
  }

  /** Forget the user and any reply (after logout). */
  reset() {
    this.close();
    this._set({ user: null, quota: null, free: null, reply: null, error: null });
  }

  /** Ask `content` in conversation `conversationId` (null: a new one). Returns the
   * client_msg_id, or null when refused locally (a reply is still running, or empty). */
  send(content, conversationId = null) {
    if (!content.trim()) return this._fail('empty');
    if (this._state.reply) return this._fail('busy');
    const reply = {
      clientMsgId: uuid4(this._random),
      conversationId,
      content,
      messageId: null,
      text: '',
      status: 'sending',
      queuePosition: null,
      sent: false, // the chat frame went out at least once
      stopRequested: false, // stop asked while offline: sent after the reconnect
    };
    this._set({ reply, error: null });
    // Offline, the chat waits: it goes out once the socket is (re)opened.
    if (this._state.connection === 'open') this._sendChat(reply);
    return reply.clientMsgId;
  }

  /** Stop the running reply; the server stores what was written and answers `done`.
   * Offline, a chat never sent is dropped; one the server may have is stopped on reconnect. */
  stop() {
    const reply = this._state.reply;
    if (!reply) return;
    if (this._state.connection === 'open') {
      this._sendFrame({ type: 'stop' });
    } else if (reply.sent) {
      this._updateReply({ stopRequested: true });
    } else {
      this._endReply('stopped');
    }
  }

  _connect() {
    const token = this._getToken();
    if (!token) {
      this._set({ connection: 'unauthorized', error: this._error('unauthorized') });
      return;
    }
    this._set({ connection: this._attempt ? 'reconnecting' : 'connecting' });
    const task = this._connectSocket({
      url: this._url,
      header: { Authorization: `Bearer ${token}` },
      fail: () => this._lost(task, null),
    });
    this._task = task;
    task.onMessage(({ data }) => this._onFrame(task, data));
    task.onClose(({ code }) => this._lost(task, code));
    task.onError(() => this._lost(task, null));
  }

  /** The socket `task` is gone (closed by either side, or dead): decide what comes next. */
  _lost(task, code) {
    if (task !== this._task) return;
    this._drop();
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_BANNED) {
      const reason = code === CLOSE_BANNED ? 'banned' : 'unauthorized';
      this._wanted = false;
      this._set({ connection: reason, retry: null, error: this._error(reason) });
      return;
    }
    if (!this._wanted) {
      this._set({ connection: 'closed' });
      return;
    }
    const delayMs = backoffDelay(this._attempt, this._backoff, this._random);
    this._attempt += 1;
    const retry = { attempt: this._attempt, delayMs };
    this._set({ connection: 'reconnecting', retry });
    this.emit('reconnect', retry);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._wanted) this._connect();
    }, delayMs);
  }

  /** Close the current socket, if any, and stop its heartbeat. */
  _drop() {
    const task = this._task;
    this._task = null;
    clearInterval(this._heartbeatTimer);
    clearTimeout(this._pongTimer);
    this._heartbeatTimer = null;
    this._pongTimer = null;
    if (task) task.close({ code: 1000, reason: 'client closed' });
  }

  _onFrame(task, data) {
    if (task !== this._task) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      return;
    }
    // Any frame proves the socket alive, not only a pong.
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
    this.emit('frame', frame);
    const handler = HANDLERS[frame.type];
    if (handler) handler.call(this, frame);
  }

  _onReady(frame) {
    this._attempt = 0;
    this._set({
      connection: 'open',
      retry: null,
      user: frame.user,
      quota: frame.quota,
      free: frame.free,
      error: null,
    });
    this._startHeartbeat();
    this._continueReply();
  }

  /** After (re)connecting: pick the reply up where the last socket left it. */
  _continueReply() {
    const reply = this._state.reply;
    if (!reply) return;
    if (reply.messageId === null) {
      // No `start` seen: the server may or may not have the chat. The same client_msg_id
      // is answered with the existing reply and charged once.
      this._sendChat(reply);
    } else {
      this._sendFrame({
        type: 'resume',
        message_id: reply.messageId,
        offset: codePointLength(reply.text),
      });
    }
    if (reply.stopRequested) this._sendFrame({ type: 'stop' });
  }

  _onQueued(frame) {
    this._updateReply({ status: 'queued', queuePosition: frame.position });
  }

  _onStart(frame) {
    const reply = this._state.reply;
    if (!reply) return;
    const sameReply = reply.messageId === frame.message_id;
    this._updateReply({
      messageId: frame.message_id,
      conversationId: frame.conversation_id,
      text: sameReply ? reply.text : '',
      status: 'streaming',
      queuePosition: null,
    });
  }

  _onDelta(frame) {
    const reply = this._state.reply;
    if (!reply) return;
    this._updateReply({ text: reply.text + frame.text, status: 'streaming' });
  }

  _onDone(frame) {
    this._state.quota = frame.quota;
    this._state.free = frame.free;
    const reply = this._state.reply;
    if (!reply) {
      this._set({});
      return;
    }
    this._updateReply({ messageId: frame.message_id, finishReason: frame.finish_reason });
    this._endReply(frame.finish_reason === 'cancelled' ? 'stopped' : 'done');
  }

  _onError(frame) {
    const error = this._error(frame.code, frame.message);
    if (frame.code === 'quota_exhausted') Object.assign(this._state, { quota: 0, free: 0 });
    this._state.error = error;
    if (this._state.reply) {
      // Any error about a running reply ends it.
      this._endReply(endingOf(frame.code, this._state.reply.messageId));
    } else {
      this._set({});
    }
  }

  _endReply(status) {
    const ended = { ...this._state.reply, status };
    this._set({ reply: null });
    this.emit('reply-end', ended);
  }

  _sendChat(reply) {
    this._updateReply({ sent: true });
    this._sendFrame({
      type: 'chat',
      conversation_id: reply.conversationId,
      content: reply.content,
      client_msg_id: reply.clientMsgId,
    });
  }

  _sendFrame(frame) {
    if (this._task) this._task.send({ data: JSON.stringify(frame) });
  }

  _startHeartbeat() {
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = setInterval(() => {
      this._sendFrame({ type: 'ping' });
      if (!this._pongTimer) {
        const task = this._task;
        // A socket on a dead network often never reports closing: give up on it ourselves.
        this._pongTimer = setTimeout(() => this._lost(task, null), this._pongTimeoutMs);
      }
    }, this._heartbeatMs);
  }

  _updateReply(changes) {
    this._set({ reply: { ...this._state.reply, ...changes } });
  }

  _fail(code) {
    this._set({ error: this._error(code) });
    return null;
  }

  _error(code, message = '') {
    return { code, message, words: errorWords(code, message) };
  }

  _set(changes) {
    Object.assign(this._state, changes);
    this.emit('state', this.state);
  }
}

const HANDLERS = {
  ready: ChatClient.prototype._onReady,
  queued: ChatClient.prototype._onQueued,
  start: ChatClient.prototype._onStart,
  delta: ChatClient.prototype._onDelta,
  done: ChatClient.prototype._onDone,
  error: ChatClient.prototype._onError,
};

module.exports = { ChatClient, CLOSE_UNAUTHORIZED, CLOSE_BANNED };
