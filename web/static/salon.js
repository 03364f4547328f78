/*
 * AI Admin — the salon's own page (кабинет салона): conversations, settings, results, WhatsApp.
 *
 * No inline script (the page CSP forbids it), no framework, no library, no build step: charts
 * are SVG drawn here. Every text that comes from the server or a client is written with
 * textContent (or as an attribute value), never as HTML.
 *
 * Authentication is the HttpOnly session cookie (scoped to /marketplace/salon); the page never
 * sees a token. Every state-changing request sends the CSRF token from
 * <meta name="csrf-token"> as X-CSRF-Token. A 401 means the session is over: the page says
 * how to open it again and stops its socket.
 *
 * The API is data-api-base (/marketplace/salon/api/<company id>): overview, conversations
 * (list, transcript, takeover, giveback, messages), settings (+ templates/preview,
 * reminders/plan), results, whatsapp (relink, logout). Live updates come over data-ws-path:
 * frames {"event": "message"|"conversation"|"status"|"error", "data": {...}}; the list and the
 * open transcript are read again (debounced) on message/conversation, the WhatsApp state is
 * shown from status. A lost socket is re-opened with exponential backoff (1 s … 30 s) and the
 * page re-reads what it shows, since frames may have been missed meanwhile.
 *
 * Dates and times are shown on the salon's own clock (the overview's timezone), the one the
 * assistant and the reminders use, whatever the browser's zone.
 */
(function () {
  'use strict';

  var root = document.getElementById('salon-app');
  if (!root) {
    return;
  }

  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var REFRESH_DELAY_MS = 250;
  var SEARCH_DELAY_MS = 300;
  var PREVIEW_DELAY_MS = 400;
  var PAGE_SIZE = 30;
  var MAX_MESSAGE = 4096;
  var MAX_TEXT = 1000;
  var RESULT_DAYS = 30;
  // The SVG namespace, read from a parsed <svg> (this file names no outside address).
  var SVG_NS = new DOMParser()
    .parseFromString('<svg xmlns="http://www.w3.org/2000/svg"></svg>', 'image/svg+xml')
    .documentElement.namespaceURI;

  var TEXT = {
    sessionExpired: 'Сессия кабинета закончилась. Откройте кабинет заново из YClients или со страницы подключения WhatsApp.',
    network: 'Нет связи с сервером. Проверьте интернет и попробуйте ещё раз.',
    generic: 'Не получилось. Попробуйте ещё раз.',
    forbidden: 'Этот кабинет относится к другому салону. Откройте кабинет своего салона из YClients.',
    csrf: 'Страница устарела. Обновите её и повторите действие.',
    rateLimited: 'Слишком много запросов. Подождите минуту и попробуйте снова.',
    live: 'Обновляется автоматически',
    liveLost: 'Нет связи для обновлений, переподключаемся…',
    saved: 'Сохранено',
    saving: 'Сохраняем…',
    notConnected: 'WhatsApp салона не подключён — сообщение не отправлено. Привяжите WhatsApp на вкладке «WhatsApp».',
    optedOut: 'Клиент отказался от сообщений — писать ему нельзя.',
    emptyMessage: 'Напишите текст сообщения.',
    longMessage: 'Сообщение слишком длинное: не больше 4096 символов.',
    sent: 'Отправлено в очередь WhatsApp салона',
    conversationGone: 'Переписка не найдена.',
    noChats: 'Переписок пока нет.',
    noChatsFound: 'Ничего не нашлось.',
    loggedOutWa: 'WhatsApp отключён. Чтобы ассистент снова отвечал, привяжите WhatsApp.',
    badTime: 'Укажите время в формате ЧЧ:ММ, например 18:00.',
    badLink: 'Укажите адрес страницы целиком, начиная с https',
    emptyText: 'Текст не может быть пустым.',
    longText: 'Текст слишком длинный: не больше 1000 символов.',
    badWord: 'Слова пишите через запятую, каждое не длиннее 60 символов.'
  };

  var ERROR_TEXT = {
    salon_session_expired: TEXT.sessionExpired,
    unauthorized: TEXT.sessionExpired,
    forbidden: TEXT.forbidden,
    csrf_failed: TEXT.csrf,
    rate_limited: TEXT.rateLimited,
    whatsapp_not_connected: TEXT.notConnected,
    opted_out: TEXT.optedOut,
    conversation_not_found: TEXT.conversationGone
  };

  var WA_STATUS = {
    connected: 'Подключён',
    reconnecting: 'Восстанавливаем связь…',
    disconnected: 'Не подключён',
    linking: 'Ожидаем привязки по QR-коду',
    pending: 'Ожидаем привязки по QR-коду',
    logged_out: 'Отвязан от телефона',
    banned: 'Номер временно ограничен WhatsApp',
    replaced: 'Открыт в другом месте',
    frozen: 'Интеграция приостановлена в YClients',
    uninstalled: 'Приложение удалено из YClients'
  };

  var MODE_TEXT = {
    assistant: 'Отвечает ассистент',
    handoff: 'Ведёт администратор — ассистент молчит',
    opted_out: 'Клиент отказался от сообщений'
  };

  var ACTION_MARK = {
    booked: '✓',
    moved: '✓',
    visit_confirmed: '✓',
    cancelled: '✕',
    handoff: '→',
    taken_over: '→',
    given_back: '←',
    opted_out: '⦸',
    rating: '★'
  };

  var PLAN_KIND = {
    day_before: 'Накануне визита',
    two_hours: 'Незадолго до визита',
    review: 'Просьба оценить визит'
  };

  var PLAN_STATUS = {
    planned: '',
    claimed: 'отправляется',
    sent: 'отправлено',
    skipped: 'не будет отправлено'
  };

  var TEXT_KIND = [
    ['day_before', 'Напоминание накануне визита'],
    ['two_hours', 'Напоминание незадолго до визита'],
    ['review', 'Просьба оценить визит'],
    ['review_link', 'Ответ на оценку со ссылкой на отзывы'],
    ['review_thanks', 'Благодарность за оценку'],
    ['review_sorry', 'Ответ на низкую оценку']
  ];

  var CHARTS = [
    { title: 'Сообщения, на которые ответил ассистент', mode: 'stack',
      series: [['answered', 'Ответы']] },
    { title: 'Записи ассистента', mode: 'stack',
      series: [['booked', 'Записал'], ['moved', 'Перенёс'], ['cancelled', 'Отменил']] },
    { title: 'Напоминания', mode: 'overlay',
      series: [['reminders_sent', 'Отправлено'], ['reminders_confirmed', 'Подтверждено']] },
    { title: 'Чаты, переданные администратору', mode: 'stack',
      series: [['handed_over', 'Передано']] },
    { title: 'Оценки по дням', mode: 'stack', series: [['ratings', 'Оценок']] }
  ];

  function byId(id) {
    return document.getElementById(id);
  }

  function safePath(value, fallback) {
    // A same-origin absolute path only ("//host" would leave our origin).
    if (typeof value === 'string' && /^\/(?!\/)[A-Za-z0-9_\-\/.]*$/.test(value)) {
      return value.replace(/\/+$/, '');
    }
    return fallback;
  }

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var config = {
    companyId: root.getAttribute('data-company-id') || '',
    apiBase: safePath(root.getAttribute('data-api-base'), ''),
    wsPath: safePath(root.getAttribute('data-ws-path'), ''),
    connectAvailable: root.getAttribute('data-connect-available') === '1',
    csrf: csrfMeta ? csrfMeta.getAttribute('content') || '' : ''
  };

  var el = {
    banner: byId('error-banner'),
    waDot: byId('wa-dot'),
    waLine: byId('wa-status-line'),
    liveLine: byId('live-line'),
    logout: byId('logout-button'),
    needsBadge: byId('needs-badge'),
    chats: byId('chats'),
    searchForm: byId('search-form'),
    search: byId('search-input'),
    filterNeeds: byId('filter-needs'),
    list: byId('chat-list'),
    listEmpty: byId('chat-list-empty'),
    listMore: byId('chat-list-more'),
    chatEmpty: byId('chat-empty'),
    chatView: byId('chat-view'),
    chatBack: byId('chat-back'),
    chatName: byId('chat-name'),
    chatPhone: byId('chat-phone'),
    chatMode: byId('chat-mode'),
    takeover: byId('takeover-button'),
    giveback: byId('giveback-button'),
    transcript: byId('transcript'),
    replyForm: byId('reply-form'),
    replyText: byId('reply-text'),
    replySend: byId('reply-send'),
    replyError: byId('reply-error'),
    replyNote: byId('reply-note'),
    settingsLoading: byId('settings-loading'),
    settings: byId('settings'),
    assistant: byId('set-assistant'),
    assistantSaved: byId('assistant-saved'),
    remindersForm: byId('reminders-form'),
    dayBeforeEnabled: byId('set-day-before-enabled'),
    dayBeforeAt: byId('set-day-before-at'),
    twoHoursEnabled: byId('set-two-hours-enabled'),
    twoHoursMinutes: byId('set-two-hours-minutes'),
    quietStart: byId('set-quiet-start'),
    quietEnd: byId('set-quiet-end'),
    remindersSaved: byId('reminders-saved'),
    planList: byId('plan-list'),
    planEmpty: byId('plan-empty'),
    reviewsForm: byId('reviews-form'),
    reviewsEnabled: byId('set-reviews-enabled'),
    reviewAfter: byId('set-review-after'),
    reviewLink: byId('set-review-link'),
    reviewLinkTo: byId('set-review-link-to'),
    reviewsSaved: byId('reviews-saved'),
    textsForm: byId('texts-form'),
    textsFields: byId('texts-fields'),
    placeholderList: byId('placeholder-list'),
    textsSaved: byId('texts-saved'),
    synonymsForm: byId('synonyms-form'),
    synonymsFields: byId('synonyms-fields'),
    synonymsEmpty: byId('synonyms-empty'),
    synonymsSaved: byId('synonyms-saved'),
    resultsLoading: byId('results-loading'),
    results: byId('results'),
    ratingAverage: byId('rating-average'),
    ratingCount: byId('rating-count'),
    ratingBars: byId('rating-bars'),
    charts: byId('charts'),
    waStatus: byId('wa-status'),
    waPhone: byId('wa-phone'),
    waSince: byId('wa-since'),
    waError: byId('wa-error'),
    relink: byId('relink-button'),
    waLogout: byId('wa-logout-button'),
    waActionError: byId('wa-action-error'),
    waDialog: byId('wa-logout-dialog')
  };

  var state = {
    dead: false,
    tab: 'chats',
    conversations: [],
    cursor: null,
    listSeq: 0,
    query: '',
    needsOnly: false,
    open: null,
    openConversation: null,
    transcriptSeq: 0,
    settings: null,
    settingsLoaded: false,
    ws: null,
    wsAttempt: 0,
    wsTimer: null,
    wsEverOpened: false,
    timers: {},
    previewSeq: {}
  };

  // ---------------------------------------------------------------------------- helpers

  function show(node, visible) {
    if (node) {
      node.hidden = !visible;
    }
  }

  function setText(node, text) {
    if (node) {
      node.textContent = text;
    }
  }

  function clear(node) {
    while (node && node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, String(attrs[name]));
    });
    return node;
  }

  function later(key, fn, delay) {
    // One pending call per key: a burst of frames or keystrokes does one request.
    if (state.timers[key]) {
      clearTimeout(state.timers[key]);
    }
    state.timers[key] = setTimeout(function () {
      state.timers[key] = null;
      fn();
    }, delay);
  }

  function has(map, key) {
    return Object.prototype.hasOwnProperty.call(map, key);
  }

  function formatPhone(phone) {
    var digits = String(phone || '').replace(/\D/g, '');
    if (!digits) {
      return '';
    }
    var m = /^7(\d{3})(\d{3})(\d{2})(\d{2})$/.exec(digits);
    if (m) {
      return '+7 ' + m[1] + ' ' + m[2] + '-' + m[3] + '-' + m[4];
    }
    return '+' + digits;
  }

  function parseDate(value) {
    if (typeof value !== 'string' || !value) {
      return null;
    }
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date;
  }

  // Every date and time is shown on the salon's own clock (its zone, from the overview), as
  // the assistant and the reminders use it, not on the browser's (an owner may be travelling).
  // Until the overview has answered, the browser's zone stands in.
  var clock = makeClock(undefined);
  // The results' days are already the salon's dates ("YYYY-MM-DD"): shown as they are.
  var fmtChartDay = new Intl.DateTimeFormat('ru-RU', { day: 'numeric', month: 'short', timeZone: 'UTC' });

  function makeClock(zone) {
    function format(options) {
      if (zone) {
        options.timeZone = zone;
      }
      return new Intl.DateTimeFormat('ru-RU', options);
    }
    return {
      zone: zone,
      time: format({ hour: '2-digit', minute: '2-digit' }),
      dayMonth: format({ day: 'numeric', month: 'long' }),
      shortDay: format({ weekday: 'short', day: 'numeric', month: 'short' }),
      date: format({ year: 'numeric', month: '2-digit', day: '2-digit' })
    };
  }

  function setZone(zone) {
    // true when the page's clock changed (what is shown must be drawn again).
    if (typeof zone !== 'string' || !zone || zone === clock.zone) {
      return false;
    }
    try {
      clock = makeClock(zone);
    } catch (e) {
      return false; // a zone this browser does not know: keep the current clock
    }
    return true;
  }

  function dayKey(date) {
    // The salon's calendar day of a moment, "YYYY-MM-DD".
    var parts = {};
    clock.date.formatToParts(date).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return parts.year + '-' + parts.month + '-' + parts.day;
  }

  function sameDay(a, b) {
    return dayKey(a) === dayKey(b);
  }

  function dayLabel(date) {
    var today = dayKey(new Date());
    var day = dayKey(date);
    if (day === today) {
      return 'Сегодня';
    }
    var yesterday = new Date(today + 'T12:00:00Z');
    yesterday.setUTCDate(yesterday.getUTCDate() - 1);
    if (day === yesterday.toISOString().slice(0, 10)) {
      return 'Вчера';
    }
    return clock.dayMonth.format(date);
  }

  function shortWhen(value) {
    var date = parseDate(value);
    if (!date) {
      return '';
    }
    if (sameDay(date, new Date())) {
      return clock.time.format(date);
    }
    return clock.shortDay.format(date).replace(/\.$/, '');
  }

  function longWhen(value) {
    var date = parseDate(value);
    if (!date) {
      return '';
    }
    return clock.shortDay.format(date) + ', ' + clock.time.format(date);
  }

  function plural(n, one, few, many) {
    var mod10 = n % 10;
    var mod100 = n % 100;
    if (mod10 === 1 && mod100 !== 11) {
      return one;
    }
    if (mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14)) {
      return few;
    }
    return many;
  }

  function capitalise(text) {
    var s = String(text || '');
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
  }

  function number(value) {
    var n = Number(value);
    return isFinite(n) && n > 0 ? n : 0;
  }

  // ------------------------------------------------------------------------ messages

  function showBanner(text) {
    setText(el.banner, text);
    show(el.banner, true);
  }

  function clearBanner() {
    if (!state.dead) {
      setText(el.banner, '');
      show(el.banner, false);
    }
  }

  function errorCode(result) {
    var error = result && result.data && result.data.error;
    return error && typeof error.code === 'string' ? error.code : '';
  }

  function errorText(result) {
    if (!result || result.status === 0) {
      return TEXT.network;
    }
    var code = errorCode(result);
    if (has(ERROR_TEXT, code)) {
      return ERROR_TEXT[code];
    }
    if (result.status === 429) {
      return TEXT.rateLimited;
    }
    return TEXT.generic;
  }

  function serverMessage(result) {
    // The settings API answers a refused value with a Russian message for the field.
    var error = result && result.data && result.data.error;
    if (result && result.status === 400 && error && typeof error.message === 'string' &&
        /[А-Яа-яЁё]/.test(error.message)) {
      return error.message;
    }
    return errorText(result);
  }

  function sessionOver(text) {
    state.dead = true;
    showBanner(text || TEXT.sessionExpired);
    setText(el.liveLine, '');
    stopSocket();
    Array.prototype.forEach.call(root.querySelectorAll('button, input, textarea, select'),
      function (node) {
        node.disabled = true;
      });
  }

  // ----------------------------------------------------------------------------- API

  function request(method, url, body) {
    var headers = { Accept: 'application/json' };
    var options = { method: method, credentials: 'same-origin', cache: 'no-store', headers: headers };
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = config.csrf;
    }
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () {
        return null;
      }).then(function (data) {
        var result = {
          ok: response.ok,
          status: response.status,
          data: data && typeof data === 'object' ? data : {}
        };
        if (response.status === 401) {
          sessionOver();
        } else if (response.status === 403 && errorCode(result) === 'forbidden') {
          sessionOver(TEXT.forbidden);
        }
        return result;
      });
    }, function () {
      return { ok: false, status: 0, data: {} };
    });
  }

  function api(method, path, body) {
    return request(method, config.apiBase + path, body);
  }

  function phonePath(phone) {
    return '/conversations/' + encodeURIComponent(phone);
  }

  // -------------------------------------------------------------------------- overview

  function waStatusText(wa) {
    var status = wa && typeof wa.status === 'string' ? wa.status : '';
    if (wa && wa.connected === true) {
      return WA_STATUS.connected;
    }
    return has(WA_STATUS, status) ? WA_STATUS[status] : WA_STATUS.disconnected;
  }

  function renderWhatsapp(wa) {
    if (!wa || typeof wa !== 'object') {
      return;
    }
    var status = typeof wa.status === 'string' ? wa.status : '';
    var connected = wa.connected === true;
    var tone = connected ? 'ok' : status === 'reconnecting' || status === 'linking' ? 'warn' : 'error';
    var phone = formatPhone(wa.phone);
    // The number never breaks across lines (non-breaking spaces and hyphens).
    var unbroken = phone.replace(/ /g, '\u00a0').replace(/-/g, '\u2011');
    setText(el.waLine, 'WhatsApp: ' + waStatusText(wa).toLowerCase() + (phone ? ' · ' + unbroken : ''));
    if (el.waDot) {
      el.waDot.className = 'status-dot status-' + tone;
    }
    setText(el.waStatus, waStatusText(wa));
    el.waStatus.className = 'wa-state wa-' + tone;
    setText(el.waPhone, phone || '—');
    setText(el.waSince, longWhen(wa.connected_at) || '—');
    setText(el.waError, typeof wa.last_error === 'string' && wa.last_error ? wa.last_error : '—');
    show(el.waLogout, connected || status === 'reconnecting' || !!wa.phone);
  }

  function renderNeeds(count) {
    var n = number(count);
    setText(el.needsBadge, n ? String(n) : '');
    show(el.needsBadge, n > 0);
    if (el.needsBadge) {
      el.needsBadge.setAttribute('aria-label', n ? 'нужен администратор: ' + n : '');
    }
  }

  function loadOverview() {
    return api('GET', '/overview').then(function (result) {
      if (!result.ok) {
        if (!state.dead) {
          showBanner(errorText(result));
        }
        return;
      }
      var zoneChanged = setZone(result.data.timezone);
      renderWhatsapp(result.data.whatsapp);
      renderNeeds(result.data.needs_person);
      if (zoneChanged) {
        redrawTimes();
      }
    });
  }

  function redrawTimes() {
    // The salon's clock is known (or changed): what already shows times is drawn again.
    if (state.listSeq > 0) {
      loadList(false);
    }
    loadTranscript();
    if (state.settingsLoaded) {
      loadPlan();
    }
  }

  // ---------------------------------------------------------------- conversation list

  function conversationTitle(c) {
    var name = typeof c.client_name === 'string' ? c.client_name.trim() : '';
    return name || formatPhone(c.phone) || 'Клиент';
  }

  function badge(text, tone) {
    return make('span', 'chip chip-' + tone, text);
  }

  function listItem(c) {
    var item = make('li', 'chat-item-wrap');
    var button = make('button', 'chat-item');
    button.type = 'button';
    button.setAttribute('data-phone', String(c.phone || ''));
    if (state.open === c.phone) {
      button.setAttribute('aria-current', 'true');
    }
    var top = make('span', 'chat-item-top');
    top.appendChild(make('span', 'chat-item-name', conversationTitle(c)));
    top.appendChild(make('span', 'chat-item-time', shortWhen(c.last_message_at || c.updated_at)));
    button.appendChild(top);
    if (c.client_name) {
      button.appendChild(make('span', 'chat-item-phone', formatPhone(c.phone)));
    }
    var last = typeof c.last_text === 'string' ? c.last_text : '';
    if (last) {
      var preview = make('span', 'chat-item-text');
      if (c.last_direction === 'out') {
        preview.appendChild(make('span', 'chat-item-you', '↪ '));
      }
      preview.appendChild(document.createTextNode(last.length > 140 ? last.slice(0, 140) + '…' : last));
      button.appendChild(preview);
    }
    var chips = make('span', 'chat-item-chips');
    if (c.needs_person) {
      chips.appendChild(badge('Нужен администратор', 'alert'));
    }
    if (c.mode === 'handoff') {
      chips.appendChild(badge('Ведёт администратор', 'person'));
    } else if (c.mode === 'opted_out') {
      chips.appendChild(badge('Отказался от сообщений', 'muted'));
    }
    var rating = c.last_rating && typeof c.last_rating === 'object' ? c.last_rating : null;
    if (rating && number(rating.rating)) {
      chips.appendChild(badge('Оценка ' + number(rating.rating) + ' ★', rating.low ? 'alert' : 'ok'));
    }
    if (chips.firstChild) {
      button.appendChild(chips);
    }
    button.addEventListener('click', function () {
      openChat(String(c.phone || ''));
    });
    item.appendChild(button);
    return item;
  }

  function renderList() {
    clear(el.list);
    state.conversations.forEach(function (c) {
      el.list.appendChild(listItem(c));
    });
    var empty = state.conversations.length === 0;
    setText(el.listEmpty, state.query || state.needsOnly ? TEXT.noChatsFound : TEXT.noChats);
    show(el.listEmpty, empty);
    show(el.listMore, !!state.cursor);
  }

  function searchText(query) {
    // A phone as people type it (+7 (917) 100-00-01) is searched by its digits.
    return /^[\d\s()+\-.]+$/.test(query) ? query.replace(/\D/g, '') : query;
  }

  function listQuery(cursor, limit) {
    var params = new URLSearchParams();
    var q = searchText(state.query);
    if (q) {
      params.set('q', q);
    }
    if (state.needsOnly) {
      params.set('needs_person', 'true');
    }
    if (cursor) {
      params.set('cursor', cursor);
    }
    params.set('limit', String(limit));
    return '/conversations?' + params.toString();
  }

  function loadList(more) {
    if (state.dead) {
      return Promise.resolve();
    }
    var seq = ++state.listSeq;
    // A refresh re-reads as many as are shown (up to 100), so "show more" pages stay.
    var limit = more ? PAGE_SIZE : Math.min(100, Math.max(PAGE_SIZE, state.conversations.length));
    return api('GET', listQuery(more ? state.cursor : null, limit)).then(function (result) {
      if (seq !== state.listSeq) {
        return;
      }
      if (!result.ok) {
        if (!state.dead) {
          showBanner(errorText(result));
        }
        return;
      }
      var items = Array.isArray(result.data.conversations) ? result.data.conversations : [];
      state.conversations = more ? state.conversations.concat(items) : items;
      state.cursor = typeof result.data.next_cursor === 'string' ? result.data.next_cursor : null;
      renderList();
    });
  }

  // ------------------------------------------------------------------------ transcript

  function renderHeader(c) {
    state.openConversation = c;
    setText(el.chatName, conversationTitle(c));
    setText(el.chatPhone, c.client_name ? formatPhone(c.phone) : '');
    var mode = typeof c.mode === 'string' ? c.mode : 'assistant';
    var text = has(MODE_TEXT, mode) ? MODE_TEXT[mode] : MODE_TEXT.assistant;
    if (mode === 'handoff' && parseDate(c.mode_until)) {
      text += ' до ' + longWhen(c.mode_until);
    }
    if (c.needs_person) {
      text += ' · нужен администратор';
    }
    setText(el.chatMode, text);
    el.chatMode.className = 'chat-mode mode-' + mode + (c.needs_person ? ' mode-needs' : '');
    show(el.takeover, mode === 'assistant');
    show(el.giveback, mode === 'handoff');
    var optedOut = mode === 'opted_out';
    el.replyText.disabled = optedOut || state.dead;
    el.replySend.disabled = optedOut || state.dead;
    setText(el.replyNote, optedOut
      ? 'Клиент отказался от сообщений: писать ему нельзя.'
      : mode === 'handoff'
        ? 'Сообщение уйдёт с WhatsApp салона. Ассистент молчит, пока вы не вернёте чат ему.'
        : 'Сообщение уйдёт с WhatsApp салона, а ассистент в этом чате замолчит, пока вы не вернёте чат ему.');
  }

  var BY_LABEL = { client: 'Клиент', assistant: 'Ассистент', salon: 'Салон' };
  var STATUS_LABEL = {
    queued: 'в очереди',
    pending: 'в очереди',
    sending: 'отправляется',
    failed: 'не доставлено',
    read: 'прочитано',
    delivered: 'доставлено'
  };

  function messageItem(item) {
    var incoming = item.direction === 'in';
    var by = incoming ? 'client' : item.by === 'salon' ? 'salon' : 'assistant';
    var li = make('li', 'msg msg-' + (incoming ? 'in' : 'out') + ' msg-by-' + by);
    var bubble = make('div', 'bubble');
    bubble.appendChild(make('p', 'bubble-text', typeof item.text === 'string' ? item.text : ''));
    var meta = make('p', 'bubble-meta');
    if (!incoming) {
      meta.appendChild(make('span', 'bubble-by', BY_LABEL[by]));
    }
    meta.appendChild(make('span', 'bubble-time', fmtClockSafe(item.at)));
    var status = typeof item.status === 'string' ? item.status : '';
    if (!incoming && has(STATUS_LABEL, status)) {
      meta.appendChild(make('span', 'bubble-status status-' + status, STATUS_LABEL[status]));
    }
    bubble.appendChild(meta);
    li.appendChild(bubble);
    return li;
  }

  function fmtClockSafe(value) {
    var date = parseDate(value);
    return date ? clock.time.format(date) : '';
  }

  function actionItem(item) {
    var action = typeof item.action === 'string' ? item.action : '';
    var li = make('li', 'action action-' + (has(ACTION_MARK, action) ? action : 'other'));
    var mark = has(ACTION_MARK, action) ? ACTION_MARK[action] : '•';
    li.appendChild(make('span', 'action-text', mark + ' ' + capitalise(item.text)));
    li.appendChild(make('span', 'action-time', fmtClockSafe(item.at)));
    return li;
  }

  function renderTranscript(items) {
    var atBottom = el.transcript.scrollHeight - el.transcript.scrollTop - el.transcript.clientHeight < 40;
    clear(el.transcript);
    var lastDay = null;
    items.forEach(function (item) {
      if (!item || typeof item !== 'object') {
        return;
      }
      var date = parseDate(item.at);
      if (date && (!lastDay || !sameDay(date, lastDay))) {
        el.transcript.appendChild(make('li', 'day', dayLabel(date)));
        lastDay = date;
      }
      el.transcript.appendChild(item.kind === 'action' ? actionItem(item) : messageItem(item));
    });
    if (!items.length) {
      el.transcript.appendChild(make('li', 'day', 'Сообщений пока нет'));
    }
    if (atBottom || state.scrollOnRender) {
      el.transcript.scrollTop = el.transcript.scrollHeight;
      state.scrollOnRender = false;
    }
  }

  function loadTranscript() {
    var phone = state.open;
    if (!phone || state.dead) {
      return Promise.resolve();
    }
    var seq = ++state.transcriptSeq;
    return api('GET', phonePath(phone)).then(function (result) {
      if (seq !== state.transcriptSeq || state.open !== phone) {
        return;
      }
      if (!result.ok) {
        if (!state.dead) {
          showBanner(errorText(result));
        }
        return;
      }
      if (result.data.conversation && typeof result.data.conversation === 'object') {
        renderHeader(result.data.conversation);
      }
      renderTranscript(Array.isArray(result.data.items) ? result.data.items : []);
    });
  }

  function openChat(phone) {
    if (!phone) {
      return;
    }
    var changed = state.open !== phone;
    state.open = phone;
    if (changed) {
      clear(el.transcript);
      setText(el.replyError, '');
      show(el.replyError, false);
      el.replyText.value = '';
      state.scrollOnRender = true;
      var known = state.conversations.filter(function (c) {
        return c.phone === phone;
      })[0];
      if (known) {
        renderHeader(known);
      }
    }
    show(el.chatEmpty, false);
    show(el.chatView, true);
    el.chats.classList.add('show-chat');
    Array.prototype.forEach.call(el.list.querySelectorAll('.chat-item'), function (node) {
      if (node.getAttribute('data-phone') === phone) {
        node.setAttribute('aria-current', 'true');
      } else {
        node.removeAttribute('aria-current');
      }
    });
    loadTranscript();
  }

  function closeChat() {
    el.chats.classList.remove('show-chat');
  }

  function setMode(action) {
    var phone = state.open;
    if (!phone) {
      return;
    }
    el.takeover.disabled = true;
    el.giveback.disabled = true;
    api('POST', phonePath(phone) + '/' + action, {}).then(function (result) {
      el.takeover.disabled = state.dead;
      el.giveback.disabled = state.dead;
      if (!result.ok) {
        if (!state.dead) {
          showBanner(errorText(result));
        }
        return;
      }
      clearBanner();
      var c = result.data.conversation || result.data;
      if (c && typeof c === 'object' && c.phone === phone) {
        renderHeader(c);
      }
      loadTranscript();
      loadList(false);
      later('overview', loadOverview, REFRESH_DELAY_MS);
    });
  }

  function replyError(text) {
    setText(el.replyError, text);
    show(el.replyError, !!text);
  }

  function sendReply(event) {
    event.preventDefault();
    var phone = state.open;
    var text = String(el.replyText.value || '').trim();
    if (!phone) {
      return;
    }
    if (!text) {
      replyError(TEXT.emptyMessage);
      el.replyText.focus();
      return;
    }
    if (text.length > MAX_MESSAGE) {
      replyError(TEXT.longMessage);
      el.replyText.focus();
      return;
    }
    replyError('');
    el.replySend.disabled = true;
    api('POST', phonePath(phone) + '/messages', { text: text }).then(function (result) {
      el.replySend.disabled = state.dead;
      if (!result.ok) {
        replyError(errorText(result));
        return;
      }
      if (state.open === phone) {
        el.replyText.value = '';
        state.scrollOnRender = true;
      }
      loadTranscript();
      loadList(false);
    });
  }

  // -------------------------------------------------------------------------- settings

  function fieldError(field, text) {
    var node = byId('err-' + field);
    if (node) {
      setText(node, text || '');
      show(node, !!text);
    }
    return node;
  }

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll('.field-error'), function (node) {
      setText(node, '');
      show(node, false);
    });
  }

  function flash(node, text) {
    setText(node, text);
    show(node, !!text);
    if (text === TEXT.saved) {
      later('flash-' + node.id, function () {
        show(node, false);
      }, 4000);
    }
  }

  function errorField(result) {
    var error = result && result.data && result.data.error;
    var field = error && typeof error.field === 'string' ? error.field : '';
    field = field.replace(/^reminders\./, '').replace(/^settings\./, '');
    if (/^texts\./.test(field)) {
      return 'text-' + field.slice(6);
    }
    var service = /^synonyms\.(\d+)$/.exec(field);
    if (service && byId('err-synonyms-' + service[1])) {
      return 'synonyms-' + service[1];
    }
    if (/^synonyms/.test(field)) {
      return 'synonyms';
    }
    return field;
  }

  function showSaveError(result, fallbackField, savedNode) {
    flash(savedNode, '');
    var text = serverMessage(result);
    var field = errorField(result);
    if (!(field && fieldError(field, text))) {
      fieldError(fallbackField, text);
    }
  }

  function reminderSettings(data) {
    var reminders = data && data.reminders;
    if (reminders && reminders.settings && typeof reminders.settings === 'object') {
      return reminders.settings;
    }
    return reminders && typeof reminders === 'object' ? reminders : {};
  }

  function placeholderNames(data) {
    // The settings answer lists the placeholders the texts may use (the server's own list).
    var items = data && Array.isArray(data.placeholders) ? data.placeholders : [];
    return items.map(function (p) {
      return p && typeof p.name === 'string' ? '{' + p.name + '}' : '';
    }).filter(Boolean);
  }

  function fillSettings(data) {
    state.settings = data;
    var rs = reminderSettings(data);
    el.assistant.checked = data.assistant_enabled !== false;
    el.dayBeforeEnabled.checked = rs.day_before_enabled !== false;
    el.dayBeforeAt.value = rs.day_before_at || '';
    el.twoHoursEnabled.checked = rs.two_hours_enabled !== false;
    el.twoHoursMinutes.value = rs.two_hours_before_minutes !== undefined ? String(rs.two_hours_before_minutes) : '';
    el.quietStart.value = rs.quiet_start || '';
    el.quietEnd.value = rs.quiet_end || '';
    el.reviewsEnabled.checked = rs.reviews_enabled !== false;
    el.reviewAfter.value = rs.review_after_minutes !== undefined ? String(rs.review_after_minutes) : '';
    el.reviewLink.value = typeof rs.review_link === 'string' ? rs.review_link : '';
    el.reviewLinkTo.value = rs.review_link_to === 'high' ? 'high' : 'all';
    setText(el.placeholderList, placeholderNames(data).join(', '));
    fillTexts(rs.texts && typeof rs.texts === 'object' ? rs.texts : {});
    fillSynonyms(Array.isArray(data.synonyms) ? data.synonyms : []);
  }

  function fillTexts(texts) {
    clear(el.textsFields);
    TEXT_KIND.forEach(function (pair) {
      var kind = pair[0];
      if (!has(texts, kind)) {
        return;
      }
      var field = make('div', 'field text-field');
      var id = 'set-text-' + kind;
      var label = make('label', '', pair[1]);
      label.setAttribute('for', id);
      var area = make('textarea', 'template-text');
      area.id = id;
      area.rows = 3;
      area.maxLength = MAX_TEXT;
      area.setAttribute('data-kind', kind);
      area.value = typeof texts[kind] === 'string' ? texts[kind] : '';
      var error = make('p', 'field-error');
      error.id = 'err-text-' + kind;
      error.hidden = true;
      var preview = make('div', 'preview');
      preview.id = 'preview-' + kind;
      preview.appendChild(make('p', 'preview-label', 'Так увидит клиент:'));
      var previewText = make('p', 'preview-text');
      previewText.id = 'preview-text-' + kind;
      preview.appendChild(previewText);
      field.appendChild(label);
      field.appendChild(area);
      field.appendChild(error);
      field.appendChild(preview);
      el.textsFields.appendChild(field);
      fitRows(area);
      area.addEventListener('input', function () {
        fitRows(area);
        later('preview-' + kind, function () {
          renderPreview(kind);
        }, PREVIEW_DELAY_MS);
      });
      renderPreview(kind);
    });
  }

  function fitRows(area) {
    // As many rows as the text takes (3 to 12), so a template is seen whole.
    var lines = String(area.value || '').split('\n').length;
    area.rows = Math.max(3, Math.min(12, lines));
    while (area.scrollHeight > area.clientHeight && area.rows < 12) {
      area.rows += 1;
    }
  }

  function renderPreview(kind) {
    var area = byId('set-text-' + kind);
    var target = byId('preview-text-' + kind);
    if (!area || !target || state.dead) {
      return;
    }
    var text = String(area.value || '');
    if (!text.trim()) {
      fieldError('text-' + kind, TEXT.emptyText);
      setText(target, '');
      return;
    }
    var seq = (state.previewSeq[kind] || 0) + 1;
    state.previewSeq[kind] = seq;
    api('POST', '/templates/preview', { kind: kind, text: text }).then(function (result) {
      if (state.previewSeq[kind] !== seq) {
        return;
      }
      if (!result.ok) {
        fieldError('text-' + kind, serverMessage(result));
        return;
      }
      fieldError('text-' + kind, '');
      setText(target, typeof result.data.preview === 'string' ? result.data.preview : '');
    });
  }

  function fillSynonyms(items) {
    clear(el.synonymsFields);
    items.forEach(function (s) {
      if (!s || typeof s !== 'object') {
        return;
      }
      var id = 'set-synonyms-' + String(s.service_id).replace(/\D/g, '');
      var field = make('div', 'field synonym-field');
      var label = make('label', '', typeof s.title === 'string' ? s.title : '');
      label.setAttribute('for', id);
      var input = make('input', 'synonym-input');
      input.id = id;
      input.type = 'text';
      input.maxLength = 1000;
      input.setAttribute('data-service-id', String(s.service_id));
      input.placeholder = 'например: шеллак, гелевое покрытие';
      input.value = Array.isArray(s.words) ? s.words.join(', ') : '';
      var error = make('p', 'field-error');
      error.id = 'err-synonyms-' + String(s.service_id).replace(/\D/g, '');
      error.hidden = true;
      field.appendChild(label);
      field.appendChild(input);
      field.appendChild(error);
      el.synonymsFields.appendChild(field);
    });
    show(el.synonymsEmpty, items.length === 0);
  }

  function loadSettings() {
    return api('GET', '/settings').then(function (result) {
      if (!result.ok) {
        if (!state.dead) {
          setText(el.settingsLoading, errorText(result));
        }
        return;
      }
      state.settingsLoaded = true;
      show(el.settingsLoading, false);
      show(el.settings, true);
      fillSettings(result.data);
      loadPlan();
    });
  }

  function patchSettings(body, form, savedNode, fallbackField) {
    clearErrors(form);
    flash(savedNode, TEXT.saving);
    return api('PATCH', '/settings', body).then(function (result) {
      if (!result.ok) {
        showSaveError(result, fallbackField, savedNode);
        return false;
      }
      flash(savedNode, TEXT.saved);
      if (result.data && (result.data.reminders || result.data.synonyms)) {
        fillSettingsPart(result.data, form);
      }
      return { replanning: result.data.replanning === true };
    });
  }

  function fillSettingsPart(data, form) {
    // Refill only the saved form's fields, so unsaved edits elsewhere are kept.
    var rs = reminderSettings(data);
    state.settings = data;
    if (form === el.remindersForm) {
      el.dayBeforeEnabled.checked = rs.day_before_enabled !== false;
      el.dayBeforeAt.value = rs.day_before_at || '';
      el.twoHoursEnabled.checked = rs.two_hours_enabled !== false;
      el.twoHoursMinutes.value = String(rs.two_hours_before_minutes);
      el.quietStart.value = rs.quiet_start || '';
      el.quietEnd.value = rs.quiet_end || '';
    } else if (form === el.reviewsForm) {
      el.reviewsEnabled.checked = rs.reviews_enabled !== false;
      el.reviewAfter.value = String(rs.review_after_minutes);
      el.reviewLink.value = typeof rs.review_link === 'string' ? rs.review_link : '';
      el.reviewLinkTo.value = rs.review_link_to === 'high' ? 'high' : 'all';
    } else if (form === el.textsForm) {
      fillTexts(rs.texts && typeof rs.texts === 'object' ? rs.texts : {});
    } else if (form === el.synonymsForm) {
      fillSynonyms(Array.isArray(data.synonyms) ? data.synonyms : []);
    }
  }

  var TIME = /^([01]?[0-9]|2[0-3]):[0-5][0-9]$/;

  function checkTime(input, field) {
    if (!TIME.test(String(input.value || ''))) {
      fieldError(field, TEXT.badTime);
      return false;
    }
    return true;
  }

  function checkMinutes(input, field, low, high) {
    var value = String(input.value || '').trim();
    var n = Number(value);
    if (!/^\d+$/.test(value) || n < low || n > high) {
      fieldError(field, 'Укажите целое число минут от ' + low + ' до ' + high + '.');
      return null;
    }
    return n;
  }

  function saveReminders(event) {
    event.preventDefault();
    clearErrors(el.remindersForm);
    var ok = checkTime(el.dayBeforeAt, 'day_before_at');
    ok = checkTime(el.quietStart, 'quiet_start') && ok;
    ok = checkTime(el.quietEnd, 'quiet_end') && ok;
    var minutes = checkMinutes(el.twoHoursMinutes, 'two_hours_before_minutes', 60, 720);
    if (!ok || minutes === null) {
      return;
    }
    patchSettings({
      reminders: {
        day_before_enabled: el.dayBeforeEnabled.checked,
        day_before_at: el.dayBeforeAt.value,
        two_hours_enabled: el.twoHoursEnabled.checked,
        two_hours_before_minutes: minutes,
        quiet_start: el.quietStart.value,
        quiet_end: el.quietEnd.value
      }
    }, el.remindersForm, el.remindersSaved, 'reminders').then(followPlan);
  }

  function saveReviews(event) {
    event.preventDefault();
    clearErrors(el.reviewsForm);
    var after = checkMinutes(el.reviewAfter, 'review_after_minutes', 0, 2880);
    var link = String(el.reviewLink.value || '').trim();
    var ok = after !== null;
    if (link && !/^https?:\/\/\S+$/i.test(link)) {
      fieldError('review_link', TEXT.badLink);
      ok = false;
    }
    if (!ok) {
      return;
    }
    patchSettings({
      reminders: {
        reviews_enabled: el.reviewsEnabled.checked,
        review_after_minutes: after,
        review_link: link || null,
        review_link_to: el.reviewLinkTo.value === 'high' ? 'high' : 'all'
      }
    }, el.reviewsForm, el.reviewsSaved, 'review_link').then(followPlan);
  }

  function saveTexts(event) {
    event.preventDefault();
    clearErrors(el.textsForm);
    var texts = {};
    var ok = true;
    Array.prototype.forEach.call(el.textsFields.querySelectorAll('textarea[data-kind]'),
      function (area) {
        var kind = area.getAttribute('data-kind');
        var text = String(area.value || '');
        if (!text.trim()) {
          fieldError('text-' + kind, TEXT.emptyText);
          ok = false;
        } else if (text.length > MAX_TEXT) {
          fieldError('text-' + kind, TEXT.longText);
          ok = false;
        }
        texts[kind] = text;
      });
    if (!ok) {
      return;
    }
    patchSettings({ reminders: { texts: texts } }, el.textsForm, el.textsSaved, 'text-day_before');
  }

  function saveSynonyms(event) {
    event.preventDefault();
    clearErrors(el.synonymsForm);
    var items = [];
    var ok = true;
    Array.prototype.forEach.call(el.synonymsFields.querySelectorAll('input[data-service-id]'),
      function (input) {
        var words = String(input.value || '').split(/[,;\n]/).map(function (w) {
          return w.trim();
        }).filter(Boolean);
        if (words.some(function (w) { return w.length > 60; })) {
          ok = false;
        }
        items.push({ service_id: Number(input.getAttribute('data-service-id')), words: words });
      });
    if (!ok) {
      fieldError('synonyms', TEXT.badWord);
      return;
    }
    patchSettings({ synonyms: items }, el.synonymsForm, el.synonymsSaved, 'synonyms');
  }

  function saveAssistant() {
    var wanted = el.assistant.checked;
    fieldError('assistant_enabled', '');
    flash(el.assistantSaved, TEXT.saving);
    api('PATCH', '/settings', { assistant_enabled: wanted }).then(function (result) {
      if (!result.ok) {
        el.assistant.checked = !wanted;
        flash(el.assistantSaved, '');
        fieldError('assistant_enabled', serverMessage(result));
        return;
      }
      el.assistant.checked = result.data.assistant_enabled !== false;
      flash(el.assistantSaved, el.assistant.checked ? 'Ассистент включён' : 'Ассистент выключен');
    });
  }

  var PLAN_FOLLOW_MS = [1000, 2000, 4000, 8000];

  function followPlan(saved) {
    // The visits are planned again in the background after a change of times or switches:
    // read the plan now and a few more times while that runs.
    if (!saved) {
      return;
    }
    loadPlan();
    if (saved.replanning) {
      var at = 0;
      PLAN_FOLLOW_MS.forEach(function (delay) {
        at += delay;
        setTimeout(function () {
          if (!state.dead) {
            loadPlan();
          }
        }, at);
      });
    }
  }

  function loadPlan() {
    return api('GET', '/reminders/plan').then(function (result) {
      clear(el.planList);
      if (!result.ok) {
        if (!state.dead) {
          el.planList.appendChild(make('li', 'plan-error', errorText(result)));
        }
        return;
      }
      var items = Array.isArray(result.data.reminders) ? result.data.reminders : [];
      items.forEach(function (r) {
        var li = make('li', 'plan-item');
        var kind = has(PLAN_KIND, r.kind) ? PLAN_KIND[r.kind] : String(r.kind || '');
        li.appendChild(make('span', 'plan-kind', kind));
        li.appendChild(make('span', 'plan-due', 'отправим ' + longWhen(r.due_at)));
        li.appendChild(make('span', 'plan-visit', 'визит ' + longWhen(r.visit_time)));
        var status = typeof r.status === 'string' && has(PLAN_STATUS, r.status) ? PLAN_STATUS[r.status] : '';
        if (status) {
          li.appendChild(make('span', 'plan-status', status));
        }
        el.planList.appendChild(li);
      });
      show(el.planEmpty, items.length === 0);
    });
  }

  // --------------------------------------------------------------------------- results

  function niceMax(value) {
    if (value <= 4) {
      return 4;
    }
    var power = Math.pow(10, Math.floor(Math.log(value) / Math.LN10));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i += 1) {
      if (steps[i] * power >= value) {
        return steps[i] * power;
      }
    }
    return 10 * power;
  }

  function dayName(iso) {
    var date = /^\d{4}-\d{2}-\d{2}$/.test(String(iso)) ? new Date(iso + 'T00:00:00Z') : null;
    return date && !isNaN(date.getTime()) ? fmtChartDay.format(date).replace('.', '') : String(iso);
  }

  function drawChart(spec, days, width) {
    // Drawn at the card's own width, so the axis text keeps its size on a phone.
    var W = Math.max(260, Math.min(760, Math.round(width || 620)));
    var H = W < 420 ? 150 : 180;
    var left = 34;
    var right = 6;
    var top = 8;
    var bottom = 24;
    var plotW = W - left - right;
    var plotH = H - top - bottom;
    var n = Math.max(days.length, 1);
    var slot = plotW / n;
    var barW = Math.max(2, slot * 0.7);
    var peak = 0;
    days.forEach(function (d) {
      var values = spec.series.map(function (s) {
        return number(d[s[0]]);
      });
      var v = spec.mode === 'stack' ? values.reduce(function (a, b) { return a + b; }, 0)
        : Math.max.apply(null, values);
      peak = Math.max(peak, v);
    });
    var max = niceMax(peak);
    var chart = svg('svg', {
      viewBox: '0 0 ' + W + ' ' + H,
      class: 'chart',
      role: 'img',
      preserveAspectRatio: 'xMidYMid meet'
    });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      chart.appendChild(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'grid' }));
      var label = svg('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' });
      label.textContent = String(Math.round(max * f * 10) / 10).replace('.', ',');
      chart.appendChild(label);
    });
    days.forEach(function (d, i) {
      var x = left + i * slot + (slot - barW) / 2;
      var base = top + plotH;
      var parts = [];
      spec.series.forEach(function (s, k) {
        var v = number(d[s[0]]);
        parts.push(s[1] + ': ' + v);
        if (!v) {
          return;
        }
        var h = (v / max) * plotH;
        var rect;
        if (spec.mode === 'stack') {
          rect = svg('rect', { x: x, y: base - h, width: barW, height: h, class: 'bar s' + k });
          base -= h;
        } else {
          var inset = k ? barW * 0.2 : 0;
          rect = svg('rect', {
            x: x + inset, y: top + plotH - h, width: barW - 2 * inset, height: h, class: 'bar s' + k
          });
        }
        chart.appendChild(rect);
      });
      // An invisible full-height target per day carries the day's numbers as a tooltip.
      var hit = svg('rect', { x: left + i * slot, y: top, width: slot, height: plotH, class: 'hit' });
      var tip = svg('title', {});
      tip.textContent = dayName(d.date) + ' — ' + parts.join(', ');
      hit.appendChild(tip);
      chart.appendChild(hit);
      var last = i === days.length - 1;
      if ((i % 7 === 0 && days.length - 1 - i >= 4) || last) {
        var label = svg('text', {
          x: last ? W - right : left + i * slot + slot / 2,
          y: H - 6,
          class: 'axis',
          'text-anchor': last ? 'end' : 'middle'
        });
        label.textContent = dayName(d.date);
        chart.appendChild(label);
      }
    });
    return chart;
  }

  function renderCharts(days, totals) {
    clear(el.charts);
    CHARTS.forEach(function (spec) {
      var card = make('section', 'card chart-card');
      card.setAttribute('data-chart', spec.series.map(function (s) { return s[0]; }).join(' '));
      card.appendChild(make('h3', '', spec.title));
      var legend = make('p', 'legend');
      var summary = [];
      spec.series.forEach(function (s, k) {
        var total = number(totals[s[0]]);
        var item = make('span', 'legend-item');
        item.setAttribute('data-key', s[0]);
        item.appendChild(make('span', 'swatch s' + k));
        item.appendChild(document.createTextNode(s[1] + ': '));
        item.appendChild(make('strong', 'legend-total', String(total)));
        legend.appendChild(item);
        summary.push(s[1] + ' ' + total);
      });
      card.appendChild(legend);
      el.charts.appendChild(card);
      var chart = drawChart(spec, days, legend.clientWidth);
      chart.setAttribute('aria-label', spec.title + ' за 30 дней: ' + summary.join(', '));
      card.appendChild(chart);
    });
  }

  function renderRatings(ratings) {
    var count = number(ratings && ratings.count);
    var average = ratings && typeof ratings.average === 'number' ? ratings.average : null;
    setText(el.ratingAverage, average === null ? '—' : average.toFixed(1).replace('.', ',') + ' ★');
    setText(el.ratingCount, count
      ? count + ' ' + plural(count, 'оценка', 'оценки', 'оценок')
      : 'оценок пока нет');
    clear(el.ratingBars);
    var distribution = ratings && ratings.distribution && typeof ratings.distribution === 'object'
      ? ratings.distribution : {};
    for (var r = 5; r >= 1; r -= 1) {
      var n = number(distribution[String(r)]);
      var row = make('div', 'rating-row');
      row.setAttribute('data-rating', String(r));
      row.appendChild(make('span', 'rating-label', r + ' ★'));
      var bar = svg('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', class: 'rating-bar', 'aria-hidden': 'true' });
      bar.appendChild(svg('rect', { x: 0, y: 0, width: 100, height: 10, class: 'rating-track' }));
      if (n && count) {
        bar.appendChild(svg('rect', { x: 0, y: 0, width: Math.max(1, (100 * n) / count), height: 10, class: 'rating-fill r' + r }));
      }
      row.appendChild(bar);
      row.appendChild(make('span', 'rating-n', String(n)));
      el.ratingBars.appendChild(row);
    }
  }

  function loadResults() {
    return api('GET', '/results?days=' + RESULT_DAYS).then(function (result) {
      if (!result.ok) {
        if (!state.dead) {
          setText(el.resultsLoading, errorText(result));
          show(el.resultsLoading, true);
        }
        return;
      }
      var days = Array.isArray(result.data.days) ? result.data.days : [];
      var totals = result.data.totals && typeof result.data.totals === 'object' ? result.data.totals : {};
      show(el.resultsLoading, false);
      show(el.results, true);
      renderRatings(result.data.ratings || {});
      renderCharts(days, totals);
    });
  }

  // -------------------------------------------------------------------------- WhatsApp

  function waActionError(text) {
    setText(el.waActionError, text);
    show(el.waActionError, !!text);
  }

  function relink() {
    waActionError('');
    el.relink.disabled = true;
    api('POST', '/whatsapp/relink', {}).then(function (result) {
      el.relink.disabled = state.dead;
      var url = result.ok && typeof result.data.connect_url === 'string' ? result.data.connect_url : '';
      var target;
      try {
        target = url ? new URL(url, window.location.href) : null;
      } catch (e) {
        target = null;
      }
      if (!target || (target.protocol !== 'https:' && target.protocol !== 'http:')) {
        waActionError(result.ok ? TEXT.generic : errorText(result));
        return;
      }
      window.location.assign(target.href);
    });
  }

  function logoutWhatsapp() {
    waActionError('');
    el.waLogout.disabled = true;
    api('POST', '/whatsapp/logout', {}).then(function (result) {
      el.waLogout.disabled = state.dead;
      if (!result.ok) {
        waActionError(errorText(result));
        return;
      }
      renderWhatsapp(result.data.whatsapp || result.data);
      waActionError('');
      showBanner(TEXT.loggedOutWa);
    });
  }

  function askLogout() {
    var dialog = el.waDialog;
    if (dialog && typeof dialog.showModal === 'function') {
      dialog.returnValue = '';
      dialog.showModal();
    } else if (window.confirm('Выйти из WhatsApp? Ассистент перестанет отвечать клиентам.')) {
      logoutWhatsapp();
    }
  }

  // ------------------------------------------------------------------------ WebSocket

  function stopSocket() {
    if (state.wsTimer !== null) {
      clearTimeout(state.wsTimer);
      state.wsTimer = null;
    }
    var ws = state.ws;
    state.ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) {
        // already closing
      }
    }
  }

  function scheduleSocket() {
    if (state.dead || state.wsTimer !== null) {
      return;
    }
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, state.wsAttempt));
    state.wsAttempt = Math.min(state.wsAttempt + 1, 16);
    state.wsTimer = setTimeout(function () {
      state.wsTimer = null;
      openSocket();
    }, delay);
  }

  function refreshAll() {
    loadOverview();
    loadList(false);
    loadTranscript();
  }

  var FRAMES = {
    message: function (data) {
      later('list', function () { loadList(false); }, REFRESH_DELAY_MS);
      if (state.open && data.phone === state.open) {
        later('transcript', loadTranscript, REFRESH_DELAY_MS);
      }
    },
    conversation: function (data) {
      later('list', function () { loadList(false); }, REFRESH_DELAY_MS);
      later('overview', loadOverview, REFRESH_DELAY_MS);
      if (state.open && data.phone === state.open) {
        renderHeader(data);
        later('transcript', loadTranscript, REFRESH_DELAY_MS);
      }
    },
    status: function (data) {
      renderWhatsapp(data);
    },
    error: function (data) {
      var code = typeof data.code === 'string' ? data.code : '';
      if (code === 'forbidden') {
        sessionOver(TEXT.forbidden);
      } else if (code === 'salon_session_expired' || code === 'unauthorized') {
        sessionOver();
      }
    }
  };

  function handleFrame(raw) {
    var frame;
    try {
      frame = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.event !== 'string' ||
        !has(FRAMES, frame.event)) {
      return;
    }
    FRAMES[frame.event](frame.data && typeof frame.data === 'object' ? frame.data : {});
  }

  function openSocket() {
    if (state.dead || state.ws || !config.wsPath || !window.WebSocket) {
      return;
    }
    var scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    var ws;
    try {
      ws = new WebSocket(scheme + '://' + window.location.host + config.wsPath);
    } catch (e) {
      scheduleSocket();
      return;
    }
    state.ws = ws;
    ws.onopen = function () {
      if (state.ws !== ws) {
        return;
      }
      setText(el.liveLine, TEXT.live);
      if (state.wsEverOpened) {
        refreshAll();  // frames may have been missed while the socket was down
      }
      state.wsEverOpened = true;
    };
    ws.onmessage = function (event) {
      if (state.ws !== ws) {
        return;
      }
      state.wsAttempt = 0;
      handleFrame(event.data);
    };
    ws.onclose = function (event) {
      if (state.ws !== ws) {
        return;
      }
      state.ws = null;
      if (event.code === 4403) {
        sessionOver(TEXT.forbidden);
        return;
      }
      if (event.code === 4401) {
        sessionOver();
        return;
      }
      if (!state.dead) {
        setText(el.liveLine, TEXT.liveLost);
        scheduleSocket();
      }
    };
    ws.onerror = function () {
      // A close event always follows; reconnecting is handled there.
    };
  }

  function reconnectNow() {
    if (!state.dead && !state.ws && state.wsTimer !== null) {
      clearTimeout(state.wsTimer);
      state.wsTimer = null;
      state.wsAttempt = 0;
      openSocket();
    }
  }

  // ------------------------------------------------------------------------------ tabs

  var TABS = ['chats', 'settings', 'results', 'whatsapp'];

  function selectTab(name, fromHash) {
    if (TABS.indexOf(name) < 0) {
      name = 'chats';
    }
    state.tab = name;
    TABS.forEach(function (tab) {
      var button = byId('tab-' + tab);
      var panel = byId('panel-' + tab);
      var selected = tab === name;
      button.setAttribute('aria-selected', selected ? 'true' : 'false');
      button.tabIndex = selected ? 0 : -1;
      show(panel, selected);
    });
    if (!fromHash) {
      try {
        window.history.replaceState(null, '', name === 'chats' ? window.location.pathname : '#' + name);
      } catch (e) {
        // the tab still shows
      }
    }
    if (state.dead) {
      return;
    }
    if (name === 'settings' && !state.settingsLoaded) {
      loadSettings();
    } else if (name === 'settings') {
      loadPlan();
    } else if (name === 'results') {
      loadResults();
    } else if (name === 'whatsapp') {
      loadOverview();
    }
  }

  // ------------------------------------------------------------------------- wiring

  TABS.forEach(function (tab, index) {
    var button = byId('tab-' + tab);
    button.addEventListener('click', function () {
      selectTab(tab);
    });
    button.addEventListener('keydown', function (event) {
      var step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (step) {
        var next = TABS[(index + step + TABS.length) % TABS.length];
        selectTab(next);
        byId('tab-' + next).focus();
        event.preventDefault();
      }
    });
  });

  el.searchForm.addEventListener('submit', function (event) {
    event.preventDefault();
    state.query = String(el.search.value || '').trim();
    loadList(false);
  });
  el.search.addEventListener('input', function () {
    later('search', function () {
      var q = String(el.search.value || '').trim();
      if (q !== state.query) {
        state.query = q;
        state.conversations = [];
        loadList(false);
      }
    }, SEARCH_DELAY_MS);
  });
  el.filterNeeds.addEventListener('change', function () {
    state.needsOnly = el.filterNeeds.checked;
    state.conversations = [];
    loadList(false);
  });
  el.listMore.addEventListener('click', function () {
    loadList(true);
  });
  el.chatBack.addEventListener('click', closeChat);
  el.takeover.addEventListener('click', function () {
    setMode('takeover');
  });
  el.giveback.addEventListener('click', function () {
    setMode('giveback');
  });
  el.replyForm.addEventListener('submit', sendReply);
  el.replyText.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      sendReply(event);
    }
  });

  el.assistant.addEventListener('change', saveAssistant);
  document.getElementById('assistant-form').addEventListener('submit', function (event) {
    event.preventDefault();
  });
  el.remindersForm.addEventListener('submit', saveReminders);
  el.reviewsForm.addEventListener('submit', saveReviews);
  el.textsForm.addEventListener('submit', saveTexts);
  el.synonymsForm.addEventListener('submit', saveSynonyms);

  show(el.relink, config.connectAvailable);
  el.relink.addEventListener('click', relink);
  el.waLogout.addEventListener('click', askLogout);
  if (el.waDialog) {
    el.waDialog.addEventListener('close', function () {
      if (el.waDialog.returnValue === 'confirm') {
        logoutWhatsapp();
      }
    });
  }

  el.logout.addEventListener('click', function () {
    el.logout.disabled = true;
    // The server closes this session's socket as it logs out: stop it first, so the page
    // does not flash "session expired" on its way to the signed-out page.
    stopSocket();
    request('POST', '/marketplace/salon/logout', {}).then(function (result) {
      if (result.ok || result.status === 401) {
        window.location.assign('/marketplace/salon');
      } else {
        el.logout.disabled = false;
        openSocket();
      }
    });
  });

  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') {
      reconnectNow();
    }
  });
  window.addEventListener('pagehide', function () {
    stopSocket();
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted && !state.dead) {
      state.wsAttempt = 0;
      openSocket();
      refreshAll();
    }
  });
  window.addEventListener('hashchange', function () {
    selectTab(window.location.hash.replace('#', ''), true);
  });

  // ------------------------------------------------------------------------------ start

  if (!config.apiBase) {
    showBanner(TEXT.generic);
    return;
  }
  // The chats are listed once the salon's clock is known (their times are on it).
  loadOverview().then(function () {
    if (state.listSeq === 0) {
      loadList(false);
    }
  });
  openSocket();
  selectTab(window.location.hash.replace('#', '') || 'chats', true);
})();
