/**
 * @jest-environment jsdom
 */
// The chat page's components rendered with miniprogram-simulate (the official WeChat tool).
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
  test('renders stored messages and the streaming reply as text', async () => {
    const list = render('message-list', {
      messages: [
        { key: 'm1', role: 'user', content: '你好', status: 'complete' },
        { key: 'm2', role: 'assistant', content: '你好！', status: 'stopped' },
      ],
      reply: { text: '今天', status: 'streaming' },
    });
    expect(texts(list, '.content')).toEqual(['你好', '你好！', '今天']);
    expect(texts(list, '.note')).toEqual(['已停止']);
    expect(list.querySelector('.cursor')).toBeTruthy();

    list.setData({ reply: { text: '今天天气', status: 'streaming' } });
    await simulate.sleep(0);
    expect(texts(list, '.live .content')).toEqual(['今天天气']);
  });

  test('shows markup from the model as characters, never as elements', async () => {
    const list = render('message-list', {
      messages: [{ key: 'm1', role: 'assistant', content: '<img src=x onerror=alert(1)><b>hi</b>', status: 'complete' }],
      reply: null,
    });
    expect(texts(list, '.content')).toEqual(['<img src=x onerror=alert(1)><b>hi</b>']);
    expect(list.dom.querySelector('img')).toBeNull();
    expect(list.dom.querySelector('b')).toBeNull();
  });

  test('says where a queued reply waits', async () => {
    const list = render('message-list', { messages: [], reply: { text: '', status: 'queued', queuePosition: 2 } });
    expect(texts(list, '.note')).toEqual(['排队中，前面还有 2 位']);
    expect(list.querySelector('.cursor')).toBeFalsy();
  });
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
