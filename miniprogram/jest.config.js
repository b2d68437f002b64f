module.exports = {
  // One real wxgpt server (tiny model) for the whole run; see test/server-setup.js.
  globalSetup: './test/server-setup.js',
  globalTeardown: './test/server-teardown.js',
  testEnvironment: 'node',
  testTimeout: 60000,
};
