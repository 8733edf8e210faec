// WeChat's miniprogram-simulate renders a page or component's WXML and runs
// its methods, as the mini program runtime would. It expects a browser
// DOM; under `node --test` jsdom provides one. Require this module before
// loading a page: it installs the DOM globals once and returns the
// simulate API (load, render, sleep, ...).
'use strict';

const { JSDOM } = require('jsdom');

if (typeof globalThis.window === 'undefined') {
  const dom = new JSDOM('<!doctype html><html><body></body></html>');
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  for (const name of ['Node', 'HTMLElement', 'getComputedStyle', 'requestAnimationFrame']) {
    if (!(name in globalThis) && name in dom.window) globalThis[name] = dom.window[name];
  }
  // Node has its own Event and CustomEvent, which jsdom's elements refuse
  // to dispatch: simulate's tap and input events must be jsdom's.
  globalThis.Event = dom.window.Event;
  globalThis.CustomEvent = dom.window.CustomEvent;
}

module.exports = require('miniprogram-simulate');
