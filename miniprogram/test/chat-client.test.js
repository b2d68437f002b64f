// The socket client against a real wxgpt server: frames in, state out.
const { loggedInClient, nextEvent, stateWhere, isOpen, gate, PIECE_PASSES } = require('./helpers');

let session;

afterEach(() => {
  gate.open();
  return session && session.client.close();
});

async function openSession(options) {
  session = await loggedInClient(options);
  session.client.open();
  await stateWhere(session.client, isOpen);
  return session;
}

test('a reply streams into state as it arrives and ends equal to the stored reply', async () => {
  const { api, client, net } = await openSession();
  // The test server gives no daily free replies: the bought quota is all there is.
  expect([client.state.quota, client.state.free]).toEqual([3, 0]);
  const deltas = [];
  const seen = [];
  client.on('frame', (frame) => frame.type === 'delta' && deltas.push(frame.text));
  client.on('state', (state) => state.reply && seen.push([state.reply.status, state.reply.text]));

  client.send('hello how are you', null);
  const ended = await nextEvent(client, 'reply-end');

  expect(ended.status).toBe('done');
  expect(deltas.length).toBeGreaterThan(1);
  expect(ended.text).toBe(deltas.join(''));
  expect(seen[0]).toEqual(['sending', '']);
  // Every delta showed up in state at once: the streamed text grew piece by piece.
  const streamed = seen.filter(([status]) => status === 'streaming').map(([, text]) => text);
  expect(streamed).toContain(deltas[0]);
  expect(streamed).toContain(deltas.slice(0, 2).join(''));
  expect(client.state.reply).toBeNull();
  expect(client.state.quota).toBe(2);

  const stored = await api.messages(ended.conversationId);
  expect(stored.items.map((m) => [m.role, m.content])).toEqual([
    ['user', 'hello how are you'],
    ['assistant', ended.text],
  ]);
  expect(net.maxAlive).toBe(1);
});

test('stop ends the reply as stopped, stored so', async () => {
  const { api, client } = await openSession();
  gate.allowMore(PIECE_PASSES);
  client.send('tell me a long story', null);
  await stateWhere(client, (s) => s.reply && s.reply.status === 'streaming');
  const stops = gate.cancels();
  client.stop();
  await gate.untilCancels(stops + 1);
  gate.open();
  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('stopped');
  const stored = await api.messages(ended.conversationId);
  expect(stored.items[1]).toMatchObject({ role: 'assistant', status: 'stopped', content: ended.text });
});

test('a message over the limit is refused in words that name the limit, and not charged', async () => {
  const { client } = await openSession();
  client.send('a'.repeat(201), null);
  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('failed');
  expect(client.state.error).toMatchObject({ code: 'too_long', words: '消息太长了，最多 200 个字' });
  expect(client.state.quota).toBe(3);
});

test('an exhausted quota is shown in words and as zero', async () => {
  const { client } = await openSession();
  for (let i = 0; i < 3; i += 1) {
    client.send(`question ${i}`, null);
    await nextEvent(client, 'reply-end');
  }
  expect(client.state.quota).toBe(0);
  client.send('one more', null);
  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('failed');
  expect(client.state.error).toMatchObject({ code: 'quota_exhausted', words: '今天的次数已用完：可到“我的”充值，或明天再来' });
});

test('a second question while a reply runs is refused locally as busy', async () => {
  const { client } = await openSession();
  expect(client.send('first', null)).not.toBeNull();
  expect(client.send('second', null)).toBeNull();
  expect(client.state.error.code).toBe('busy');
  await nextEvent(client, 'reply-end');
});

test('a bad token closes the socket as unauthorized and the client does not retry', async () => {
  const { client, net } = await loggedInClient();
  session = { client };
  global.wx.setStorageSync('wxgpt.token', 'not-a-token');
  client.open();
  const state = await stateWhere(client, (s) => s.connection === 'unauthorized');
  expect(state.error.words).toBe('登录已失效，请到“我的”重新登录');
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(net.sockets).toHaveLength(1);
});
