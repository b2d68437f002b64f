// The 充值 and 个人中心 pages against the real server, whose store is off (no WeChat Pay).
const path = require('path');
const { hostPage } = require('./page-host');
const { loggedInClient } = require('./helpers');

const PAGES = path.resolve(__dirname, '..', 'pages');
let session;

afterEach(() => session && session.client.close());

async function appWithClient() {
  session = await loggedInClient();
  return { api: session.api, chat: session.client, globalData: { openConversation: null, invite: '' } };
}

test('on iOS the store sells nothing and says why in words', async () => {
  const app = await appWithClient();
  const asked = [];
  const products = app.api.products.bind(app.api);
  app.api.products = () => asked.push('products') && products();
  wx.getDeviceInfo = () => ({ platform: 'ios' });
  const page = hostPage(path.join(PAGES, 'store', 'store'), app);
  await page.onLoad();
  expect(page.data.ios).toBe(true);
  expect(asked).toEqual([]);
});

test('elsewhere a store without WeChat Pay shows the server’s reason', async () => {
  const app = await appWithClient();
  wx.getDeviceInfo = () => ({ platform: 'android' });
  const page = hostPage(path.join(PAGES, 'store', 'store'), app);
  await page.onLoad();
  expect(page.data).toMatchObject({ ios: false, enabled: false, products: [], error: '' });
  expect(page.data.reason).toContain('not configured');
});

test('the profile shows free and bought replies, and the share card carries the invite code', async () => {
  const app = await appWithClient();
  const page = hostPage(path.join(PAGES, 'me', 'me'), app);
  await page.refresh();
  expect(page.data).toMatchObject({ quota: 3, free: 0, error: '' });
  expect(page.data.inviteCode).toMatch(/^[A-Z0-9]{8}$/);
  expect(page.onShareAppMessage().path).toBe(`/pages/chat/chat?invite=${page.data.inviteCode}`);
});
