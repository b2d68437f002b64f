// The server stops when its stdin closes (tests/miniprogram_server.py).
module.exports = async function stopServer() {
  const child = globalThis.wxgptServer;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.stdin.end();
  await exited;
};
