/*
 * Runs web/static/connect.js in a fake browser (DOM elements by id, WebSocket, timers,
 * location/history) and plays a scenario given as JSON on stdin. Prints a JSON report.
 *
 * Scenario: {"url": "/marketplace/connect?token=…&company=1&salon=2", "simulator": true,
 *            "returnUrl": "https://…", "steps": [step, …]}
 * Steps:
 *   {"open": true}                     the latest socket opens
 *   {"server": {"event": …, "data": …}} the latest socket receives a frame
 *   {"raw": "text"}                    the latest socket receives raw text
 *   {"close": true}                    the latest socket closes
 *   {"advance": ms}                    fake time passes, due timers fire in order
 *   {"click": "id"}                    click an element
 *   {"submit": "id"}                   submit a form
 *   {"input": ["id", "value"]}         set an input's value
 *   {"snapshot": "name"}               record the visible state under that name
 * Report: {"snapshots": {...}, "sockets": [{"url", "sent": [frames]}], "history": [...],
 *          "final": snapshot, "errors": [uncaught errors]}
 */
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');

const IDS = [
  'connect-app', 'status-text', 'status-dot', 'error-banner', 'expired-panel', 'expired-text',
  'qr-panel', 'qr-image', 'qr-placeholder', 'qr-countdown', 'new-qr-button', 'pairing-panel',
  'pairing-form', 'pairing-phone', 'pairing-submit', 'pairing-result', 'pairing-code',
  'success-panel', 'success-phone', 'return-link', 'dev-panel', 'simulate-scan',
  'reconnecting-panel', 'reconnecting-title', 'reconnecting-text', 'reconnecting-phone-line',
  'reconnecting-phone', 'resume-button', 'reconnecting-return-link',
];
const INITIALLY_HIDDEN = new Set([
  'error-banner', 'expired-panel', 'qr-image', 'new-qr-button', 'pairing-result', 'success-panel',
  'reconnecting-panel', 'resume-button',
]);

function main() {
  const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
  const source = fs.readFileSync(
    path.join(__dirname, '..', '..', 'web', 'static', 'connect.js'), 'utf8');

  let now = 0;
  let timerSeq = 0;
  const timers = new Map();
  const errors = [];

  function addTimer(fn, delay, repeat) {
    const id = ++timerSeq;
    timers.set(id, { fn, at: now + Math.max(0, Number(delay) || 0), every: repeat ? delay : 0 });
    return id;
  }

  function advance(ms) {
    const end = now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of timers) {
        if (t.at <= end && (next === null || t.at < next[1].at || (t.at === next[1].at && id < next[0]))) {
          next = [id, t];
        }
      }
      if (next === null) break;
      const [id, t] = next;
      now = t.at;
      if (t.every) t.at = now + t.every; else timers.delete(id);
      try { t.fn(); } catch (e) { errors.push(String(e && e.stack || e)); }
    }
    now = end;
  }

  class Element {
    constructor(id) {
      this.id = id;
      this.hidden = INITIALLY_HIDDEN.has(id);
      this.textContent = '';
      this.attributes = {};
      this.listeners = {};
      this.disabled = false;
      this.value = '';
      this.className = '';
      this.focused = false;
    }
    getAttribute(name) { return name in this.attributes ? this.attributes[name] : null; }
    setAttribute(name, value) { this.attributes[name] = String(value); }
    removeAttribute(name) { delete this.attributes[name]; }
    addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
    focus() { this.focused = true; }
    scrollIntoView() { this.revealed = (this.revealed || 0) + 1; }
    dispatch(type) {
      const event = { type, defaultPrevented: false, preventDefault() { this.defaultPrevented = true; } };
      for (const fn of this.listeners[type] || []) {
        try { fn(event); } catch (e) { errors.push(String(e && e.stack || e)); }
      }
      return event;
    }
  }

  const elements = {};
  for (const id of IDS) elements[id] = new Element(id);
  if (!scenario.simulator) {
    delete elements['dev-panel'];
    delete elements['simulate-scan'];
  }
  const root = elements['connect-app'];
  root.setAttribute('data-company-id', '1');
  root.setAttribute('data-salon-id', '962302');
  root.setAttribute('data-ws-path', scenario.wsPath || '/marketplace/ws');
  root.setAttribute('data-return-url', scenario.returnUrl || 'https://yclients.com/');
  root.setAttribute('data-simulator', scenario.simulator ? '1' : '0');
  elements['return-link'].setAttribute('href', scenario.returnUrl || 'https://yclients.com/');

  const url = new URL(scenario.url || '/marketplace/connect?token=T0KEN&company=1&salon=962302',
    'https://ai-admin.app');
  const location = {
    protocol: url.protocol, host: url.host, pathname: url.pathname,
    get search() { return url.search; }, hash: '',
  };
  const historyLog = [];
  const history = {
    replaceState(state, title, newUrl) {
      historyLog.push(newUrl);
      const next = new URL(newUrl, url.href);
      url.pathname = next.pathname;
      url.search = next.search;
      location.pathname = next.pathname;
    },
  };

  const sockets = [];
  class FakeWebSocket {
    constructor(wsUrl) {
      this.url = wsUrl;
      this.readyState = 0;
      this.sent = [];
      this.closedByClient = null;
      sockets.push(this);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(text));
    }
    close(code) { this.closedByClient = code === undefined ? null : code; this.readyState = 3; }
  }

  const windowListeners = {};
  const documentListeners = {};
  const sandbox = {
    document: {
      getElementById: (id) => elements[id] || null,
      addEventListener: (type, fn) => { (documentListeners[type] = documentListeners[type] || []).push(fn); },
      visibilityState: 'visible',
    },
    location,
    history,
    WebSocket: FakeWebSocket,
    URLSearchParams,
    Date: { now: () => now },
    setTimeout: (fn, ms) => addTimer(fn, ms, false),
    clearTimeout: (id) => { timers.delete(id); },
    setInterval: (fn, ms) => addTimer(fn, ms, true),
    clearInterval: (id) => { timers.delete(id); },
  };
  sandbox.window = sandbox;
  sandbox.addEventListener = (type, fn) => { (windowListeners[type] = windowListeners[type] || []).push(fn); };

  try {
    vm.runInNewContext(source, sandbox, { filename: 'connect.js' });
  } catch (e) {
    errors.push(String(e && e.stack || e));
  }

  function latest() {
    const ws = sockets[sockets.length - 1];
    if (!ws) throw new Error('no socket was opened');
    return ws;
  }

  function snapshot() {
    const visible = {};
    const text = {};
    for (const [id, e] of Object.entries(elements)) {
      visible[id] = !e.hidden;
      if (e.textContent) text[id] = e.textContent;
    }
    return {
      visible,
      text,
      qrSrc: elements['qr-image'].getAttribute('src'),
      returnHref: elements['return-link'].getAttribute('href'),
      pairingDisabled: elements['pairing-submit'].disabled,
      revealed: Object.keys(elements).filter((id) => elements[id].revealed),
      statusClass: elements['status-dot'].className,
      url: url.pathname + url.search,
      sockets: sockets.length,
      pendingTimers: timers.size,
      now,
    };
  }

  const snapshots = {};
  for (const step of scenario.steps || []) {
    try {
      if (step.open) {
        const ws = latest();
        ws.readyState = 1;
        ws.onopen && ws.onopen({});
      } else if (step.server) {
        latest().onmessage({ data: JSON.stringify(step.server) });
      } else if ('raw' in step) {
        latest().onmessage({ data: step.raw });
      } else if (step.close) {
        const ws = latest();
        ws.readyState = 3;
        ws.onclose && ws.onclose({ code: 1006 });
      } else if ('advance' in step) {
        advance(step.advance);
      } else if (step.click) {
        elements[step.click].dispatch('click');
      } else if (step.submit) {
        const event = elements[step.submit].dispatch('submit');
        if (!event.defaultPrevented) errors.push('submit was not prevented');
      } else if (step.input) {
        elements[step.input[0]].value = step.input[1];
      } else if (step.window) {
        for (const fn of windowListeners[step.window] || []) fn({ persisted: !!step.persisted });
      } else if (step.snapshot) {
        snapshots[step.snapshot] = snapshot();
      }
    } catch (e) {
      errors.push(String(e && e.stack || e));
    }
  }

  process.stdout.write(JSON.stringify({
    snapshots,
    final: snapshot(),
    sockets: sockets.map((s) => ({ url: s.url, sent: s.sent, closedByClient: s.closedByClient })),
    history: historyLog,
    errors,
  }));
}

main();
