// Losing the socket: reconnect with exponential backoff, heartbeat timeouts, one socket at most.
const { backoffDelay } = require('../utils/backoff');
const { loggedInClient, nextEvent, stateWhere, isOpen } = require('./helpers');

const BACKOFF = { baseMs: 20, maxMs: 80 };
let session;

afterEach(() => session && session.client.close());

test('backoff doubles up to the cap, jittered within [cap / 2, cap]', () => {
  const caps = [20, 40, 80, 80, 80];
  caps.forEach((cap, attempt) => {
    expect(backoffDelay(attempt, BACKOFF, () => 0)).toBe(cap / 2);
    expect(backoffDelay(attempt, BACKOFF, () => 1)).toBe(cap);
    const jittered = backoffDelay(attempt, BACKOFF);
    expect(jittered).toBeGreaterThanOrEqual(cap / 2);
    expect(jittered).toBeLessThanOrEqual(cap);
  });
});

test('a socket killed while the network is down is retried with growing delays, then reopened', async () => {
  session = await loggedInClient({ backoff: BACKOFF, random: () => 1 });
  const { client, net } = session;
  client.open();
  await stateWhere(client, isOpen);
  const delays = [];
  client.on('reconnect', (retry) => delays.push(retry.delayMs));

  net.down = true;
  net.sockets[0].ws.terminate();
  await nextEvent(client, 'reconnect', (retry) => retry.attempt === 5, 5000);
  expect(delays).toEqual([20, 40, 80, 80, 80]);
  expect(client.state.connection).toBe('reconnecting');

  net.down = false;
  await stateWhere(client, isOpen, 5000);
  // Back online, the next drop starts the sequence from the beginning.
  net.sockets[net.sockets.length - 1].ws.terminate();
  const retry = await nextEvent(client, 'reconnect');
  expect(retry).toEqual({ attempt: 1, delayMs: 20 });
  await stateWhere(client, isOpen, 5000);
  expect(net.maxAlive).toBe(1);
});

test('a socket that stops answering pings is given up after the pong timeout and replaced', async () => {
  session = await loggedInClient({ heartbeatMs: 50, pongTimeoutMs: 100, backoff: BACKOFF });
  const { client, net } = session;
  client.open();
  await stateWhere(client, isOpen);
  const pings = () => net.sockets[0].sent.filter((data) => JSON.parse(data).type === 'ping').length;
  await new Promise((resolve) => setTimeout(resolve, 180));
  expect(pings()).toBeGreaterThanOrEqual(2);
  expect(client.state.connection).toBe('open');

  net.silent = true;
  const started = Date.now();
  await nextEvent(client, 'reconnect', () => true, 2000);
  expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  net.silent = false;
  await stateWhere(client, isOpen, 5000);
  expect(net.sockets).toHaveLength(2);
  expect(net.maxAlive).toBe(1);
});

test('close() stops reconnecting; a chat sent offline goes out once the socket opens', async () => {
  session = await loggedInClient({ backoff: BACKOFF });
  const { client, net } = session;
  client.send('hello', null);
  expect(client.state.reply.status).toBe('sending');
  client.open();
  const ended = await nextEvent(client, 'reply-end');
  expect(ended.status).toBe('done');
  expect(ended.text.length).toBeGreaterThan(0);

  client.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(client.state.connection).toBe('closed');
  expect(net.sockets).toHaveLength(1);
  expect(net.alive).toBe(0);
});

test('stop while offline drops a chat that never went out', async () => {
  session = await loggedInClient({ backoff: BACKOFF });
  const { client, net } = session;
  client.send('hello', null);
  client.stop();
  expect(client.state.reply).toBeNull();
  client.open();
  await stateWhere(client, isOpen);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(net.sockets[0].sent || []).toEqual([]);
});
