// The HTTP API module over the bridged wx.request, against the real server.
const { Api, ApiError } = require('../utils/api');
const { loggedInClient, nextEvent, stateWhere, isOpen } = require('./helpers');

async function userWithConversations(count) {
  const { api, client } = await loggedInClient();
  client.open();
  await stateWhere(client, isOpen);
  for (let i = 0; i < count; i += 1) {
    client.send(`question ${i}`, null);
    client.stop();
    await nextEvent(client, 'reply-end');
  }
  client.close();
  return api;
}

test('login keeps the token; me answers the profile and quota', async () => {
  const { api } = await loggedInClient();
  expect(api.token).not.toBe('');
  const me = await api.me();
  expect(me.quota).toBe(3);
  expect(me.user.id).toEqual(expect.any(Number));
});

test('login sends the wx.login code unless a development id is configured', async () => {
  const { api } = await loggedInClient();
  const bodies = [];
  const recording = new Api({
    baseUrl: process.env.WXGPT_TEST_URL,
    request: (options) => {
      bodies.push(options.data);
      return new Promise((resolve, reject) => wx.request({ ...options, success: resolve, fail: reject }));
    },
  });
  // The test server has no WeChat credentials, so a real code is refused, in words.
  await expect(recording.login()).rejects.toMatchObject({ status: 503, code: 'unavailable' });
  expect(bodies).toEqual([{ code: 'simulated-code', nickname: '' }]);
  expect(api.token).not.toBe('');
});

test('conversations come a page at a time, newest first; rename and delete', async () => {
  const api = await userWithConversations(3);
  const first = await api.conversations(0, 2);
  expect(first.total).toBe(3);
  expect(first.items).toHaveLength(2);
  expect(first.next_offset).toBe(2);
  const second = await api.conversations(first.next_offset, 2);
  expect(second.items).toHaveLength(1);
  expect(second.next_offset).toBeNull();
  const ids = first.items.concat(second.items).map((c) => c.id);
  expect(ids).toEqual([...ids].sort((a, b) => b - a));

  const renamed = await api.rename(ids[0], '天气');
  expect(renamed.title).toBe('天气');
  await api.remove(ids[1]);
  const after = await api.conversations(0, 20);
  expect(after.items.map((c) => [c.id, c.title])).toEqual([
    [ids[0], '天气'],
    [ids[2], expect.any(String)],
  ]);
  await expect(api.messages(ids[1])).rejects.toMatchObject({ status: 404, code: 'not_found' });
});

test('a rejected token is forgotten; a lost network is an ApiError with status 0', async () => {
  const { api } = await loggedInClient();
  wx.setStorageSync('wxgpt.token', 'expired');
  await expect(api.me()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  expect(api.token).toBe('');

  wx.net.down = true;
  const failure = await api.me().catch((e) => e);
  expect(failure).toBeInstanceOf(ApiError);
  expect(failure).toMatchObject({ status: 0, code: 'network' });
});
