// Runs a page's Page({...}) definition outside WeChat: data and setData (with paths such as
// "items[2].title"), and getApp() answering the given app. Enough to drive a page's
// handlers against the real server; rendering is the components' tests' job.

function setPath(target, path, value) {
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  const last = keys.pop();
  const parent = keys.reduce((node, key) => node[key], target);
  parent[last] = value;
}

/** The page defined in `file`, with `app` as getApp(); selectComponent('#id') answers
 * `components[id]`. */
function hostPage(file, app, components = {}) {
  let definition;
  global.Page = (options) => {
    definition = options;
  };
  global.getApp = () => app;
  jest.isolateModules(() => require(file));
  const page = Object.create(definition);
  page.data = JSON.parse(JSON.stringify(definition.data));
  page.setData = (changes) => Object.keys(changes).forEach((path) => setPath(page.data, path, changes[path]));
  page.selectComponent = (selector) => components[selector.replace(/^#/, '')];
  return page;
}

module.exports = { hostPage };
