// What the user reads: error words and times.
const { errorWords } = require('../utils/errors');
const { shortTime } = require('../utils/time');
const { codePointLength } = require('../utils/text');

test('error codes become words; too_long names the server limit', () => {
  expect(errorWords('too_long', 'message is 2300 characters; the limit is 2000 characters')).toBe(
    '消息太长了，最多 2000 个字',
  );
  expect(errorWords('too_long', 'prompt too long')).toBe('消息太长了，请删减后再发');
  expect(errorWords('quota_exhausted')).toBe('今天的次数已用完：可到“我的”充值，或明天再来');
  expect(errorWords('busy')).toMatch(/^正忙/);
  expect(errorWords('teapot', 'short and stout')).toBe('出错了：short and stout');
});

test('times: today the time, this year the date, earlier the year', () => {
  const now = new Date(2026, 10, 24, 18, 0);
  expect(shortTime(new Date(2026, 10, 24, 9, 5).toISOString(), now)).toBe('09:05');
  expect(shortTime(new Date(2026, 0, 3, 9, 5).toISOString(), now)).toBe('01-03 09:05');
  expect(shortTime(new Date(2025, 11, 31, 23, 59).toISOString(), now)).toBe('2025-12-31');
});

test('reply offsets count code points, as the server does', () => {
  expect(codePointLength('你好🙂')).toBe(3);
  expect('你好🙂'.length).toBe(4);
});
