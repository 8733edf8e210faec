// Loads the example mini program (example/app.js, its config.js unchanged,
// and pages/index) with App/Page/getApp stand-ins around the given `wx`, and
// returns a page instance whose setData merges into data, plus shown(): a
// Promise that resolves once the page shows a new result (page handlers
// return nothing).
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');

const EXAMPLE = path.join(__dirname, '..', 'example');

function loadExamplePage(wx) {
  global.wx = wx;
  let appObject;
  let pageDef;
  global.App = (def) => { appObject = def; };
  global.getApp = () => appObject;
  global.Page = (def) => { pageDef = def; };
  require(path.join(EXAMPLE, 'app.js'));
  appObject.onLaunch();
  require(path.join(EXAMPLE, 'pages', 'index', 'index.js'));

  const page = Object.assign({}, pageDef, { data: Object.assign({}, pageDef.data) });
  let shows = 0;
  page.setData = (d) => {
    Object.assign(page.data, d);
    if ('result' in d) shows++;
  };
  let seen = 0;
  const shown = async () => {
    const until = Date.now() + 10000;
    while (shows === seen && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.ok(shows > seen, 'the page showed nothing');
    seen = shows;
  };
  return { page, shown };
}

module.exports = { loadExamplePage, EXAMPLE };
