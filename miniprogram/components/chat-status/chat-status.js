// One line above the input: today's free replies and the bought quota left, the socket's
// state, the last error, in words.

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
    // today's free replies left; shown only while there are some
    free: { type: Number, optionalTypes: [null], value: null },
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
