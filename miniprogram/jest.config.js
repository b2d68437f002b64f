module.exports = {
  // One real wxgpt server (tiny model) for the whole run; see test/server-setup.js. Its model
  // waits on one gate that a test may hold, so the test files run one after another.
  maxWorkers: 1,
  globalSetup: './test/server-setup.js',
  globalTeardown: './test/server-teardown.js',
  testEnvironment: 'node',
  testTimeout: 60000,
};
