// The chat and history pages' handlers driven against the real server.
const path = require('path');
const { hostPage } = require('./page-host');
const { loggedInClient, nextEvent, stateWhere, isOpen } = require('./helpers');

const PAGES = path.resolve(__dirname, '..', 'pages');
let session;

afterEach(() => session && session.client.close());

async function appWithClient() {
  session = await loggedInClient();
  return { api: session.api, chat: session.client, globalData: { openConversation: null } };
}

async function ask(page, app, content) {
  page.onSend({ detail: { content } });
  return nextEvent(app.chat, 'reply-end');
}

test('the chat page shows the question, the streaming reply, then both as messages', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app);
  page.onLoad();
  page.onShow();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  expect(page.data).toMatchObject({ loggedIn: true, quota: 3, connection: 'open', conversationId: null });

  const shown = [];
  app.chat.on('state', () => page.data.reply && shown.push(page.data.reply.text));
  const ended = await ask(page, app, 'hello how are you');

  expect(shown.length).toBeGreaterThan(1);
  expect(shown[shown.length - 1]).toBe(ended.text);
  expect(page.data.reply).toBeNull();
  expect(page.data.quota).toBe(2);
  expect(page.data.conversationId).toBe(ended.conversationId);
  expect(page.data.messages.map((m) => [m.role, m.content, m.status])).toEqual([
    ['user', 'hello how are you', 'complete'],
    ['assistant', ended.text, 'done'],
  ]);

  // Opened again from history, the same conversation comes back from the server.
  page.onNewConversation();
  app.globalData.openConversation = { id: ended.conversationId, title: '旧对话' };
  page.onShow();
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(page.data.title).toBe('旧对话');
  expect(page.data.messages.map((m) => [m.role, m.content])).toEqual([
    ['user', 'hello how are you'],
    ['assistant', ended.text],
  ]);
});

test('a refused question leaves its words in the status line and no empty reply bubble', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app);
  page.onLoad();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  await ask(page, app, 'x'.repeat(300));
  expect(page.data.error).toBe('消息太长了，最多 200 个字');
  expect(page.data.messages.map((m) => m.role)).toEqual(['user']);
});

test('the history page lists, renames, deletes and opens conversations', async () => {
  const app = await appWithClient();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  for (let i = 0; i < 3; i += 1) {
    app.chat.send(`topic ${i}`, null);
    app.chat.stop();
    await nextEvent(app.chat, 'reply-end');
  }
  const page = hostPage(path.join(PAGES, 'history', 'history'), app);
  Object.assign(wx, {
    showActionSheet: ({ success }) => success({ tapIndex: page.nextAction }),
    showModal: ({ success }) => success({ confirm: true, content: '改过的名字' }),
    switchTab: ({ url }) => (page.switchedTo = url),
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

  await page.reload();
  expect(page.data.items).toHaveLength(3);
  expect(page.data.nextOffset).toBeNull();
  expect(page.data.items.map((c) => c.time)).toEqual(page.data.items.map(() => expect.stringMatching(/^\d\d:\d\d$/)));

  page.nextAction = 0;
  page.onActions({ currentTarget: { dataset: { index: 1 } } });
  await settle();
  expect(page.data.items[1].title).toBe('改过的名字');

  const removed = page.data.items[0].id;
  page.nextAction = 1;
  page.onActions({ currentTarget: { dataset: { index: 0 } } });
  await settle();
  expect(page.data.items.map((c) => c.id)).not.toContain(removed);
  expect((await app.api.conversations()).total).toBe(2);

  page.onOpen({ currentTarget: { dataset: { index: 0 } } });
  expect(app.globalData.openConversation).toEqual({ id: page.data.items[0].id, title: '改过的名字' });
  expect(page.switchedTo).toBe('/pages/chat/chat');
});

test('the personal centre logs in, shows the quota, and logs out', async () => {
  const app = await appWithClient();
  app.api.logout();
  const page = hostPage(path.join(PAGES, 'me', 'me'), app);
  page.onShow();
  expect(page.data.user).toBeNull();

  await page.onLogin();
  expect(page.data).toMatchObject({ quota: 3, busy: false, error: '' });
  expect(page.data.user.id).toEqual(expect.any(Number));
  await stateWhere(app.chat, isOpen);

  page.onLogout();
  expect(page.data.user).toBeNull();
  expect(app.api.token).toBe('');
  expect(app.chat.state).toMatchObject({ connection: 'closed', user: null, quota: null });
});
