// One line above the input: remaining quota, the socket's state, the last error, in words.

function connectionWords(connection, retry) {
  if (connection === 'connecting') return '正在连接…';
  if (connection === 'reconnecting') {
    return retry ? `网络已断开，${Math.ceil(retry.delayMs / 1000)} 秒后第 ${retry.attempt} 次重连…` : '正在重新连接…';
  }
  if (connection === 'closed') return '未连接';
  return '';
}

Component({
  properties: {
    connection: { type: String, value: 'closed' },
    retry: { type: Object, value: null },
    quota: { type: Number, optionalTypes: [null], value: null },
    // the words of the last error, '' for none
    error: { type: String, value: '' },
  },
  data: {
    connectionWords: '',
  },
  observers: {
    'connection, retry'(connection, retry) {
      this.setData({ connectionWords: connectionWords(connection, retry) });
    },
  },
});
