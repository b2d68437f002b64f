// wxgpt's HTTP API for the mini-program (login, profile, conversations, the store) over
// wx.request, with the login token kept in local storage.

const TOKEN_KEY = 'wxgpt.token';

class ApiError extends Error {
  /** status 0 means the request never reached the server. */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function wxRequest(options) {
  return new Promise((resolve, reject) => {
    wx.request({ ...options, success: resolve, fail: reject });
  });
}

function wxLoginCode() {
  return new Promise((resolve, reject) => {
    wx.login({ success: (res) => resolve(res.code), fail: reject });
  });
}

function query(params) {
  const pairs = Object.keys(params)
    .filter((key) => params[key] !== undefined && params[key] !== null)
    .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(params[key])}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}

class Api {
  /** devLoginWid: log in as this id on a server with WXGPT_DEV_LOGIN=1 instead of
   * sending a wx.login code (development only). */
  constructor({ baseUrl, devLoginWid = '', request = wxRequest, loginCode = wxLoginCode }) {
    this._baseUrl = baseUrl.replace(/\/$/, '');
    this._devLoginWid = devLoginWid;
    this._request = request;
    this._loginCode = loginCode;
  }

  get token() {
    return wx.getStorageSync(TOKEN_KEY) || '';
  }

  /** wx.login, then POST /api/auth/login; keeps the token; resolves to the user. `invite`:
   * the code of the share card the user came from (it counts for a new user only). */
  async login(nickname = '', invite = '') {
    const identity = this._devLoginWid
      ? { wid: this._devLoginWid }
      : { code: await this._loginCode() };
    const body = { ...identity, nickname };
    if (invite) body.invite = invite;
    const answer = await this._call('POST', '/api/auth/login', body);
    wx.setStorageSync(TOKEN_KEY, answer.token);
    return answer.user;
  }

  logout() {
    wx.removeStorageSync(TOKEN_KEY);
  }

  /** {user, quota, free, invite_code}: bought replies, free ones left today, the invite code. */
  me() {
    return this._call('GET', '/api/me');
  }

  /** {enabled, reason, products}: what the store sells, or why it is off. */
  products() {
    return this._call('GET', '/api/pay/products');
  }

  /** {order, payment}: a new order, and the parameters for wx.requestPayment. */
  createOrder(productId) {
    return this._call('POST', '/api/pay/orders', { product_id: productId });
  }

  /** {order, quota}: one of the user's orders, polled until it is paid. */
  order(outTradeNo) {
    return this._call('GET', `/api/pay/orders/${encodeURIComponent(outTradeNo)}`);
  }

  /** {items, total, next_offset}: newest first. */
  conversations(offset = 0, limit = 20) {
    return this._call('GET', `/api/conversations${query({ offset, limit })}`);
  }

  /** {items, has_more}: the page of messages before message `before` (null: the newest). */
  messages(conversationId, before = null, limit = 50) {
    return this._call('GET', `/api/conversations/${conversationId}/messages${query({ before, limit })}`);
  }

  rename(conversationId, title) {
    return this._call('PATCH', `/api/conversations/${conversationId}`, { title });
  }

  remove(conversationId) {
    return this._call('DELETE', `/api/conversations/${conversationId}`);
  }

  /** {user, quota}: the nickname is checked by the server like a message. */
  setNickname(nickname) {
    return this._call('PATCH', '/api/me', { nickname });
  }

  /** {user, quota}: `data` is the image's ArrayBuffer, `type` image/jpeg, png or webp. */
  setAvatar(data, type) {
    return this._call('POST', '/api/me/avatar', data, { 'Content-Type': type });
  }

  /** {report_id}: files one of the user's replies for the operator's review. */
  report(messageId, reason = '') {
    return this._call('POST', '/api/reports', { message_id: messageId, reason });
  }

  /** The full address of a server path such as a user's avatar_url. */
  url(path) {
    return path ? this._baseUrl + path : '';
  }

  async _call(method, path, data, extraHeader = {}) {
    const token = this.token;
    let response;
    try {
      response = await this._request({
        url: this._baseUrl + path,
        method,
        data,
        header: { ...extraHeader, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    } catch (failure) {
      throw new ApiError(0, 'network', (failure && failure.errMsg) || 'network error');
    }
    if (response.statusCode < 400) return response.data;
    if (response.statusCode === 401) this.logout();
    const error = (response.data && response.data.error) || {};
    throw new ApiError(response.statusCode, error.code || 'http_error', error.message || `HTTP ${response.statusCode}`);
  }
}

module.exports = { Api, ApiError, TOKEN_KEY };
