// What each server error code and connection problem means to the user, in words.

const LIMIT = /limit is (\d+)/;

const WORDS = {
  quota_exhausted: () => '今天的次数已用完：可到“我的”充值，或明天再来',
  too_long: (message) => {
    const match = LIMIT.exec(message || '');
    return match ? `消息太长了，最多 ${match[1]} 个字` : '消息太长了，请删减后再发';
  },
  busy: () => '正忙：上一条回复还没结束，或排队的人太多，请稍后再试',
  empty: () => '消息不能为空',
  not_found: () => '这段对话或回复已不存在',
  bad_request: () => '发送的内容格式有误',
  internal: () => '服务器出错了，请稍后再试',
  network: () => '网络不通，请检查网络后重试',
  unavailable: () => '服务器暂时不可用，请稍后再试',
  unauthorized: () => '登录已失效，请到“我的”重新登录',
  banned: () => '账号已被封禁',
  content_blocked: () => '内容不符合规范，已被拦截（未扣除额度）',
};

/** The words shown for an error `code`, using the server's `message` for limits. */
function errorWords(code, message) {
  const words = WORDS[code];
  return words ? words(message) : `出错了：${message || code}`;
}

module.exports = { errorWords };
