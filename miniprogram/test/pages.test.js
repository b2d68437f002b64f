// The chat and history pages' handlers driven against the real server.
const fs = require('fs');
const os = require('os');
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

/** Stands in for the chat page's message-list: records what setLive showed. */
function fakeList() {
  const shown = [];
  return { shown, setLive: (reply) => shown.push(reply ? reply.text : null) };
}

async function ask(page, app, content) {
  page.onSend({ detail: { content } });
  return nextEvent(app.chat, 'reply-end');
}

test('the chat page shows the question, the streaming reply, then both as messages', async () => {
  const app = await appWithClient();
  const list = fakeList();
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app, { list });
  page.onLoad();
  page.onShow();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  expect(page.data).toMatchObject({ loggedIn: true, quota: 3, connection: 'open', conversationId: null });

  let replyingSeen = false;
  app.chat.on('state', () => (replyingSeen = replyingSeen || page.data.replying));
  const ended = await ask(page, app, 'hello how are you');

  // The live text went to the list (throttled), its last showing the whole reply, then none.
  const texts = list.shown.filter((text) => text !== null);
  expect(texts.length).toBeGreaterThan(0);
  texts.forEach((text, i) => i > 0 && expect(text.startsWith(texts[i - 1])).toBe(true));
  expect(list.shown.slice(-2)).toEqual([ended.text, null]);
  expect(replyingSeen).toBe(true);
  expect(page.data.replying).toBe(false);
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
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app, { list: fakeList() });
  page.onLoad();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  await ask(page, app, 'x'.repeat(300));
  expect(page.data.error).toBe('消息太长了，最多 200 个字');
  expect(page.data.messages.map((m) => m.role)).toEqual(['user']);
});

test('a question with a listed word is marked blocked, with no reply and nothing charged', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app, { list: fakeList() });
  page.onLoad();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  const ended = await ask(page, app, 'say F O R B I D D E N W O R D');
  expect(ended.status).toBe('blocked');
  expect(page.data.error).toBe('内容不符合规范，已被拦截（未扣除额度）');
  expect(page.data.messages.map((m) => [m.role, m.status])).toEqual([['user', 'blocked']]);
  expect((await app.api.me()).quota).toBe(3);
});

test('a reply is reported from its long-press menu and filed on the server once', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'chat', 'chat'), app, { list: fakeList() });
  page.onLoad();
  app.chat.open();
  await stateWhere(app.chat, isOpen);
  const ended = await ask(page, app, 'hello');
  const reply = page.data.messages[1];
  expect(reply).toMatchObject({ role: 'assistant', id: ended.messageId });
  await page.onReport({ detail: { messageId: reply.id } });
  expect(wx.toasts).toEqual(['已举报，感谢反馈']);
  const again = await app.api.report(reply.id);
  const first = await app.api.report(reply.id);
  expect(again.report_id).toBe(first.report_id);
  await page.onReport({ detail: { messageId: 999999 } });
  expect(wx.toasts[1]).toBe('这段对话或回复已不存在');
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

test('the personal centre saves the avatar and the nickname, refusing a listed word', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'me', 'me'), app);
  await page.refresh();
  expect(page.data.avatarSrc).toBe('');

  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40)]);
  const file = path.join(os.tmpdir(), `wxgpt-avatar-${process.pid}.png`);
  fs.writeFileSync(file, png);
  await page.onChooseAvatar({ detail: { avatarUrl: file } });
  expect(page.data.notice).toBe('头像已更新');
  expect(page.data.avatarSrc).toMatch(/\/api\/avatars\/\d+\?v=1$/);
  const served = await fetch(page.data.avatarSrc);
  expect(served.headers.get('content-type')).toBe('image/png');
  expect(Buffer.from(await served.arrayBuffer()).equals(png)).toBe(true);

  await page.onSaveNickname({ detail: { value: { nickname: ' 小明 ' } } });
  expect(page.data).toMatchObject({ notice: '昵称已保存', error: '', saving: false });
  expect(page.data.user.nickname).toBe('小明');

  await page.onSaveNickname({ detail: { value: { nickname: 'ForbiddenWord' } } });
  expect(page.data.error).toBe('昵称不符合规范，请换一个');
  expect((await app.api.me()).user.nickname).toBe('小明');

  await page.onSaveNickname({ detail: { value: { nickname: '  ' } } });
  expect(page.data.error).toBe('昵称不能为空');
});
