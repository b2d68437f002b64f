// A reply survives its socket: resume from the characters received, or the same chat again.
const { codePointLength } = require('../utils/text');
const { loggedInClient, nextEvent, stateWhere, isOpen, gate, PIECE_PASSES } = require('./helpers');

const BACKOFF = { baseMs: 20, maxMs: 80 };
let session;

afterEach(() => {
  gate.open();
  return session && session.client.close();
});

async function openSession() {
  session = await loggedInClient({ backoff: BACKOFF });
  session.client.open();
  await stateWhere(session.client, isOpen);
  return session;
}

function sentFrames(net, type) {
  return net.sockets
    .flatMap((socket) => socket.sent || [])
    .map((data) => JSON.parse(data))
    .filter((frame) => frame.type === type);
}

/** Waits until the reply has streamed some text; returns that text. */
async function someText(client) {
  const state = await stateWhere(client, (s) => s.reply && s.reply.text.length > 0);
  return state.reply.text;
}

async function storedReply(api, conversationId) {
  const page = await api.messages(conversationId);
  expect(page.items.map((m) => m.role)).toEqual(['user', 'assistant']);
  return page.items[1];
}

test('a socket dropped mid-reply is resumed from the characters received; the text equals the stored reply', async () => {
  const { api, client, net } = await openSession();
  gate.allowMore(PIECE_PASSES); // the reply waits mid-way, so more of it comes after the loss
  client.send('tell me a long story about the cat', null);
  await someText(client);
  // Frames already read from the wire may still arrive after terminate(): what counts is
  // the text held when the client noticed the loss.
  const lost = nextEvent(client, 'reconnect').then(() => client.state.reply.text);
  net.sockets[0].ws.terminate();
  const before = await lost;
  gate.open();

  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('done');
  expect(ended.text.startsWith(before)).toBe(true);
  expect(ended.text.length).toBeGreaterThan(before.length);
  const [resume] = sentFrames(net, 'resume');
  expect(resume).toEqual({ type: 'resume', message_id: ended.messageId, offset: codePointLength(before) });
  expect((await storedReply(api, ended.conversationId)).content).toBe(ended.text);
  expect(client.state.quota).toBe(2);
  expect(net.maxAlive).toBe(1);
});

test('the app hidden mid-reply and shown again gets the whole reply', async () => {
  const { api, client, net } = await openSession();
  gate.allowMore(PIECE_PASSES);
  client.send('how are you today', null);
  await someText(client);
  client.close();
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(client.state.reply.status).toBe('streaming');

  gate.open();
  client.open();
  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('done');
  expect((await storedReply(api, ended.conversationId)).content).toBe(ended.text);
  expect(net.sockets).toHaveLength(2);
  expect(net.maxAlive).toBe(1);
});

test('a chat whose start never arrived is sent again with the same client_msg_id and charged once', async () => {
  const { api, client, net } = await openSession();
  net.deaf = true;
  const clientMsgId = client.send('hello world', null);
  // The server took the chat and is answering, but none of it reaches the client.
  await new Promise((resolve) => {
    const poll = setInterval(() => net.lost > 1 && (clearInterval(poll), resolve()), 10);
  });
  expect(client.state.reply).toMatchObject({ messageId: null, status: 'sending' });
  net.deaf = false;
  net.sockets[0].ws.terminate();

  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('done');
  expect(sentFrames(net, 'chat').map((frame) => frame.client_msg_id)).toEqual([clientMsgId, clientMsgId]);
  expect((await storedReply(api, ended.conversationId)).content).toBe(ended.text);
  expect(client.state.quota).toBe(2);
  expect((await api.me()).quota).toBe(2);
});

test('stop pressed while offline stops the reply once the socket is back', async () => {
  const { api, client, net } = await openSession();
  gate.allowMore(PIECE_PASSES);
  client.send('tell me a long story', null);
  await someText(client);
  net.down = true;
  net.sockets[0].ws.terminate();
  await stateWhere(client, (s) => s.connection === 'reconnecting');
  const stops = gate.cancels();
  client.stop();
  expect(client.state.reply.stopRequested).toBe(true);
  net.down = false;
  await gate.untilCancels(stops + 1); // the stop went out on the new socket and was heard
  gate.open();

  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('stopped');
  const stored = await storedReply(api, ended.conversationId);
  expect(stored).toMatchObject({ status: 'stopped', content: ended.text });
});
