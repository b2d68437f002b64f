/**
 * @jest-environment jsdom
 */
// The chat page's components rendered with miniprogram-simulate (the official WeChat tool).
const fs = require('fs');
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.resolve(__dirname, '..');

// A component's JS runs once per process (require caches it), so each is loaded once.
const loaded = {};

function render(name, properties) {
  loaded[name] = loaded[name] || simulate.load(path.join(ROOT, 'components', name, name), { rootPath: ROOT });
  const component = simulate.render(loaded[name], properties);
  component.attach(document.createElement('parent-wrapper'));
  return component;
}

function texts(component, selector) {
  return component.querySelectorAll(selector).map((node) => node.dom.textContent);
}

describe('message-list', () => {
  test('renders stored messages and the streaming reply as text, each reply marked AI生成', async () => {
    const list = render('message-list', {
      messages: [
        { key: 'm1', role: 'user', content: '你好', status: 'complete' },
        { key: 'm2', id: 2, role: 'assistant', content: '你好！', status: 'stopped' },
      ],
    });
    list.instance.setLive({ text: '今天', status: 'streaming' });
    await simulate.sleep(0);
    expect(texts(list, '.content')).toEqual(['你好', '你好！', '今天']);
    expect(texts(list, '.note')).toEqual(['已停止']);
    expect(texts(list, '.ai-mark')).toEqual(['AI生成', 'AI生成']);
    expect(list.querySelector('.cursor')).toBeTruthy();

    list.instance.setLive({ text: '今天天气', status: 'streaming' });
    await simulate.sleep(0);
    expect(texts(list, '.live .content')).toEqual(['今天天气']);
  });

  test('applies each live update as paths into the list, never the whole list', async () => {
    const list = render('message-list', {
      messages: [{ key: 'm1', role: 'user', content: '你好', status: 'complete' }],
    });
    const sent = [];
    const setData = list.instance.setData.bind(list.instance);
    list.instance.setData = (changes) => {
      sent.push(Object.keys(changes));
      setData(changes);
    };
    list.instance.setLive({ text: '', status: 'sending' });
    list.instance.setLive({ text: '今', status: 'streaming' });
    list.instance.setLive({ text: '今天', status: 'streaming' });
    await simulate.sleep(0);
    expect(sent).toEqual([['rows[1]'], ['rows[1].content', 'rows[1].note', 'rows[1].streaming'], ['rows[1].content']]);
    list.instance.setLive(null);
    await simulate.sleep(0);
    expect(texts(list, '.content')).toEqual(['你好']);
  });

  test('shows markup from the model as characters, never as elements', async () => {
    const list = render('message-list', {
      messages: [{ key: 'm1', role: 'assistant', content: '<img src=x onerror=alert(1)><b>hi</b>', status: 'complete' }],
    });
    expect(texts(list, '.content')).toEqual(['<img src=x onerror=alert(1)><b>hi</b>']);
    expect(list.dom.querySelector('img')).toBeNull();
    expect(list.dom.querySelector('b')).toBeNull();
  });

  test('says where a queued reply waits, and why a blocked one is gone', async () => {
    const list = render('message-list', {
      messages: [
        { key: 'c1', role: 'user', content: '问题', status: 'blocked' },
        { key: 'r2', id: 7, role: 'assistant', content: '', status: 'blocked' },
      ],
    });
    list.instance.setLive({ text: '', status: 'queued', queuePosition: 2 });
    await simulate.sleep(0);
    expect(texts(list, '.note')).toEqual(['未发送：内容不符合规范', '该回复因内容安全原因已被移除', '排队中，前面还有 2 位']);
    expect(list.querySelector('.cursor')).toBeFalsy();
  });

  test('a long press offers 复制 and, on a stored reply, 举报', async () => {
    const list = render('message-list', {
      messages: [
        { key: 'c1', role: 'user', content: '问题', status: 'complete' },
        { key: 'r2', id: 7, role: 'assistant', content: '回答', status: 'done' },
      ],
    });
    const offered = [];
    let choice = 0;
    global.wx = {
      showActionSheet: ({ itemList, success }) => {
        offered.push(itemList);
        success({ tapIndex: choice });
      },
      setClipboardData: ({ data }) => (wx.clipboard = data),
    };
    const reports = [];
    list.addEventListener('report', (e) => reports.push(e.detail));
    const bubbles = list.querySelectorAll('.bubble');
    bubbles[0].dispatchEvent('longpress');
    await simulate.sleep(0);
    bubbles[1].dispatchEvent('longpress');
    await simulate.sleep(0);
    expect(offered).toEqual([['复制'], ['复制', '举报']]);
    expect(wx.clipboard).toBe('回答');
    choice = 1;
    bubbles[1].dispatchEvent('longpress');
    await simulate.sleep(0);
    expect(reports).toEqual([{ messageId: 7 }]);
  });
});

describe('privacy-popup', () => {
  const { privacy } = require('../utils/privacy');
  let held;
  const toasts = [];

  beforeEach(() => {
    toasts.length = 0;
    global.wx = {
      onNeedPrivacyAuthorization: (listener) => (held = listener),
      openPrivacyContract: () => toasts.push('contract'),
      showToast: ({ title }) => toasts.push(title),
    };
    privacy.install(wx);
  });

  test('opens when WeChat holds a call, shows the guide, and agreeing lets the call go', async () => {
    const popup = render('privacy-popup', {});
    expect(popup.querySelector('.mask')).toBeFalsy();
    const answers = [];
    held((answer) => answers.push(answer), { referrer: 'chooseAvatar' });
    await simulate.sleep(0);
    expect(popup.querySelector('.mask')).toBeTruthy();
    popup.querySelector('.link').dispatchEvent('tap');
    await simulate.sleep(0);
    expect(toasts).toEqual(['contract']);
    popup.querySelector('.agree').dispatchEvent('agreeprivacyauthorization');
    await simulate.sleep(0);
    expect(answers).toEqual([{ buttonId: 'agree-privacy', event: 'agree' }]);
    expect(popup.querySelector('.mask')).toBeFalsy();
  });

  test('refusing closes it, says what needs consent, and leaves the rest usable', async () => {
    const popup = render('privacy-popup', {});
    const answers = [];
    held((answer) => answers.push(answer), { referrer: 'chooseAvatar' });
    await simulate.sleep(0);
    popup.querySelector('.refuse').dispatchEvent('tap');
    await simulate.sleep(0);
    expect(answers).toEqual([{ event: 'disagree' }]);
    expect(toasts).toEqual(['未同意隐私保护指引，暂不能设置头像；对话不受影响']);
    expect(popup.querySelector('.mask')).toBeFalsy();
    expect(privacy.pending).toBe(false);
  });
});

// j-component renders no attributes of WeChat's own controls, so the markup that WeChat's
// review looks for is read from the templates.
test('the templates use the controls WeChat requires for consent, avatar and nickname', () => {
  const read = (file) => fs.readFileSync(path.join(ROOT, file), 'utf8');
  expect(read('components/privacy-popup/privacy-popup.wxml')).toMatch(
    /open-type="agreePrivacyAuthorization"\s+bindagreeprivacyauthorization="onAgree"/,
  );
  const me = read('pages/me/me.wxml');
  expect(me).toMatch(/open-type="chooseAvatar" bind:chooseavatar="onChooseAvatar"/);
  expect(me).toMatch(/<input type="nickname" name="nickname"/);
  const app = JSON.parse(read('app.json'));
  expect(app).toMatchObject({ lazyCodeLoading: 'requiredComponents', __usePrivacyCheck__: true });
  expect(app.networkTimeout).toMatchObject({ request: 10000, connectSocket: 10000 });
});

describe('composer', () => {
  test('shows send while idle and stop while streaming', async () => {
    const composer = render('composer', { streaming: false });
    expect(composer.querySelector('.send')).toBeTruthy();
    expect(composer.querySelector('.stop')).toBeFalsy();
    composer.setData({ streaming: true });
    await simulate.sleep(0);
    expect(composer.querySelector('.send')).toBeFalsy();
    expect(composer.querySelector('.stop')).toBeTruthy();
  });

  test('send hands the typed text to the page and clears the input; stop asks to stop', async () => {
    const composer = render('composer', { streaming: false });
    const sent = [];
    let stops = 0;
    composer.addEventListener('send', (e) => sent.push(e.detail.content));
    composer.addEventListener('stop', () => (stops += 1));

    composer.querySelector('.input').dispatchEvent('input', { detail: { value: '你好' } });
    composer.querySelector('.send').dispatchEvent('tap');
    await simulate.sleep(0);
    expect(sent).toEqual(['你好']);
    expect(composer.data.value).toBe('');

    composer.querySelector('.send').dispatchEvent('tap');
    expect(sent).toEqual(['你好']);

    composer.setData({ streaming: true });
    await simulate.sleep(0);
    composer.querySelector('.stop').dispatchEvent('tap');
    expect(stops).toBe(1);
  });
});

describe('chat-status', () => {
  test('shows the remaining quota and the last error in words', () => {
    const status = render('chat-status', { connection: 'open', quota: 7, error: '消息太长了，最多 200 个字' });
    expect(texts(status, '.quota')).toEqual(['剩余额度：7 次']);
    expect(texts(status, '.error')).toEqual(['消息太长了，最多 200 个字']);
    expect(status.querySelector('.connection')).toBeFalsy();
    expect(status.querySelector('.free')).toBeFalsy();
  });

  test('shows today’s free replies while there are some', async () => {
    const status = render('chat-status', { connection: 'open', quota: 7, free: 2 });
    expect(texts(status, '.free')).toEqual(['今日免费：2 次']);
    expect(texts(status, '.quota')).toEqual(['剩余额度：7 次']);
    status.setData({ free: 0 });
    await simulate.sleep(0);
    expect(status.querySelector('.free')).toBeFalsy();
  });

  test('says when the network was lost and when it retries', async () => {
    const status = render('chat-status', { connection: 'reconnecting', retry: { attempt: 3, delayMs: 4000 } });
    expect(texts(status, '.connection')).toEqual(['网络已断开，4 秒后第 3 次重连…']);
    expect(status.querySelector('.quota')).toBeFalsy();
    status.setData({ connection: 'open', retry: null });
    await simulate.sleep(0);
    expect(status.querySelector('.connection')).toBeFalsy();
  });
});
