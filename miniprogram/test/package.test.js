// The npm package: installable (not private), its tarball holds the helper,
// its types, README and LICENSE, and WeChat DevTools' 构建 npm finds it (the
// "miniprogram" field names a directory whose index.js is the helper).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

test('package.json makes a public package with main, types and a miniprogram directory', () => {
  assert.notEqual(pkg.private, true);
  assert.equal(pkg.license, 'Apache-2.0');
  assert.ok(fs.existsSync(path.join(ROOT, pkg.main)), pkg.main);
  assert.ok(fs.existsSync(path.join(ROOT, pkg.types)), pkg.types);
  const dist = require(path.join(ROOT, pkg.miniprogram, 'index.js'));
  assert.equal(typeof dist.createAuth, 'function');
  assert.deepEqual(Object.keys(pkg.dependencies || {}), [], 'the helper has no runtime dependency');
});

test('npm pack puts the helper, its types, the miniprogram directory, README and LICENSE in the tarball', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, [
    'LICENSE',
    'README.md',
    'miniprogram_dist/index.js',
    'package.json',
    'wechat-auth.d.ts',
    'wechat-auth.js',
  ]);
});
