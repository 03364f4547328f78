/*
 * AI Admin connect page: links a salon's WhatsApp by QR code or pairing code.
 *
 * No inline script (the page CSP forbids it), no framework, no external asset.
 *
 * The connect token arrives in the address bar (?token=…). It is read once at load, kept in
 * memory only, and stripped from the address bar at once with history.replaceState (company
 * and salon stay), so it never lands in history, bookmarks, screenshots or referrers.
 *
 * Protocol (JSON frames {"event": name, "data": {...}} over one WebSocket):
 *   client → server: auth {token} (always first), request-qr {}, request-pairing-code {phone},
 *                    simulate-scan {} (dev only; the server refuses it otherwise)
 *   server → client: qr-update {qr, qr_image, expiresIn}, qr-expired {}, pairing-code {code},
 *                    whatsapp-connected {success, phone, companyId, message},
 *                    status {status, whatsapp_connected, phone, banned?, replaced?, message?},
 *                    error {message, code?}
 *
 * Every text shown is our own Russian text, chosen by status or error code: the server's
 * (English) messages are never shown. A linked salon whose session is not connected right now
 * (status active or reconnecting without whatsapp_connected) gets the reconnecting panel,
 * never a QR code: its request-qr is refused with "already_linked", which is not an error here.
 *
 * A lost connection is re-opened by itself with exponential backoff (1 s, 2 s, 4 s … 30 s;
 * at least 60 s after "rate_limited") and re-authenticates with the in-memory token.
 * Server text is only ever written with textContent, never as HTML.
 */
(function () {
  'use strict';

  var root = document.getElementById('connect-app');
  if (!root) {
    return;
  }

  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var RATE_LIMIT_WAIT_MS = 60000;
  var PAIRING_RETRY_MS = 15000;
  var MAX_TOKEN_LENGTH = 4096;
  var QR_STALE_AFTER_S = 10;

  var STATUS_TEXT = {
    pending: 'Ожидаем подключения WhatsApp',
    linking: 'Ожидаем сканирования QR-кода',
    active: 'WhatsApp подключен',
    reconnecting: 'Восстанавливаем связь с WhatsApp…',
    logged_out: 'WhatsApp отвязан от телефона. Отсканируйте QR-код заново',
    frozen: 'Интеграция приостановлена в YClients',
    uninstalled: 'Приложение AI Admin удалено из YClients',
    activation_failed: 'Не удалось завершить подключение. Попробуйте ещё раз или напишите в поддержку'
  };

  var TEXT = {
    connecting: 'Подключаемся к серверу…',
    requestingQr: 'Запрашиваем QR-код…',
    scanQr: 'Отсканируйте QR-код в WhatsApp',
    qrExpired: 'Срок действия QR-кода истёк',
    reconnecting: 'Соединение потеряно, переподключаемся…',
    rateLimited: 'Слишком много попыток, подождите минуту',
    noConnection: 'Нет соединения с сервером. Подождите, мы переподключаемся…',
    badPhone: 'Введите номер телефона с кодом страны, например +7 900 123-45-67',
    requestingCode: 'Запрашиваем код привязки…',
    enterCode: 'Введите код в WhatsApp на телефоне',
    connected: 'WhatsApp подключен',
    expired: 'Ссылка устарела',
    noToken: 'Ссылка не содержит ключа доступа. Откройте страницу подключения заново из YClients.',
    noWebSocket: 'Ваш браузер не поддерживает нужную технологию (WebSocket). Откройте страницу в современном браузере.',
    genericError: 'Произошла ошибка. Попробуйте ещё раз.',
    connectFailed: 'Не удалось подключить WhatsApp. Попробуйте ещё раз.',
    qrRefreshing: 'Обновляем код…',
    qrExpiredHint: 'QR-код устарел. Нажмите кнопку, чтобы получить новый.',
    unknownStatus: 'Проверяем состояние подключения…',
    otherSalon: 'Ссылка от другого салона',
    resuming: 'Возвращаем WhatsApp на эту страницу…'
  };

  // The panel a linked salon sees while its WhatsApp session is not connected, by cause.
  var LINKED_VIEW = {
    reconnecting: {
      status: 'Восстанавливаем связь с WhatsApp…',
      title: 'Восстанавливаем связь с WhatsApp',
      text: 'WhatsApp салона уже подключен, но связь с ним временно прервалась. Мы восстанавливаем её автоматически — сканировать QR-код заново не нужно.'
    },
    banned: {
      status: 'WhatsApp временно ограничил номер',
      title: 'WhatsApp временно ограничил номер',
      text: 'WhatsApp салона подключен, но WhatsApp временно ограничил этот номер, и отправка сообщений приостановлена. Связь восстановится автоматически, когда ограничение снимут.'
    },
    replaced: {
      status: 'WhatsApp открыт в другом месте',
      title: 'WhatsApp открыт в другом месте',
      text: 'WhatsApp салона подключен, но его сеанс открыли в другом месте, поэтому здесь он остановлен. Нажмите кнопку ниже, чтобы вернуть его сюда — сканировать QR-код заново не нужно.'
    }
  };

  // Errors that leave a pending QR request alone: a busy server closes the socket and the
  // reconnect asks again; the others answer a pairing-code request or a malformed frame.
  var NOT_ABOUT_THE_QR = {
    unavailable: true,
    service_unavailable: true,
    served_elsewhere: true,
    rate_limited: true,
    invalid_field: true,
    missing_field: true,
    pairing_failed: true,
    bad_frame: true,
    unknown_event: true
  };

  // Our text for every error code the server sends (its own message is never shown).
  var ERROR_TEXT = {
    unavailable: 'Сервис временно недоступен. Подождите, мы переподключаемся…',
    service_unavailable: 'Сервис временно недоступен. Подождите, мы переподключаемся…',
    served_elsewhere: 'Сервис временно недоступен. Подождите, мы переподключаемся…',
    frozen: 'Интеграция приостановлена в YClients. Возобновите её в YClients, чтобы подключить WhatsApp.',
    uninstalled: 'Приложение AI Admin удалено из YClients. Установите его заново в маркетплейсе YClients.',
    forbidden: 'Эта ссылка относится к другому салону. Откройте страницу подключения из YClients своего салона.',
    origin_not_allowed: 'Страницу подключения нужно открыть из YClients или по ссылке из письма.',
    no_qr: 'QR-код ещё не готов. Нажмите «Получить новый код».',
    pairing_failed: 'Не удалось получить код привязки. Проверьте номер и попробуйте ещё раз.',
    session_failed: 'Не удалось связаться с WhatsApp. Нажмите «Получить новый код», чтобы попробовать ещё раз.',
    invalid_field: 'Введите номер телефона с кодом страны, например +7 900 123-45-67',
    missing_field: 'Введите номер телефона с кодом страны, например +7 900 123-45-67',
    bad_frame: 'Страница отправила неверный запрос. Обновите страницу.',
    unknown_event: 'Страница отправила неверный запрос. Обновите страницу.',
    refused: 'Сейчас это действие недоступно. Попробуйте ещё раз позже.',
    not_linked: 'WhatsApp салона ещё не подключён. Отсканируйте QR-код.',
    rate_limited: 'Слишком много попыток, подождите минуту'
  };

  function byId(id) {
    return document.getElementById(id);
  }

  var el = {
    statusText: byId('status-text'),
    statusDot: byId('status-dot'),
    errorBanner: byId('error-banner'),
    expiredPanel: byId('expired-panel'),
    expiredText: byId('expired-text'),
    qrPanel: byId('qr-panel'),
    qrImage: byId('qr-image'),
    qrPlaceholder: byId('qr-placeholder'),
    qrCountdown: byId('qr-countdown'),
    newQrButton: byId('new-qr-button'),
    pairingPanel: byId('pairing-panel'),
    pairingForm: byId('pairing-form'),
    pairingPhone: byId('pairing-phone'),
    pairingSubmit: byId('pairing-submit'),
    pairingResult: byId('pairing-result'),
    pairingCode: byId('pairing-code'),
    successPanel: byId('success-panel'),
    successPhone: byId('success-phone'),
    reconnectingPanel: byId('reconnecting-panel'),
    reconnectingTitle: byId('reconnecting-title'),
    reconnectingText: byId('reconnecting-text'),
    reconnectingPhoneLine: byId('reconnecting-phone-line'),
    reconnectingPhone: byId('reconnecting-phone'),
    resumeButton: byId('resume-button'),
    reconnectingReturnLink: byId('reconnecting-return-link'),
    returnLink: byId('return-link'),
    devPanel: byId('dev-panel'),
    simulateScan: byId('simulate-scan'),
    cabinetPanel: byId('cabinet-panel'),
    openSalon: byId('open-salon-button'),
    cabinetError: byId('cabinet-error')
  };

  function safeWsPath(value) {
    // A same-origin absolute path only ("//host" would leave our origin).
    if (typeof value === 'string' && /^\/(?!\/)[A-Za-z0-9_\-\/.]*$/.test(value)) {
      return value;
    }
    return '/marketplace/ws';
  }

  var config = {
    companyId: root.getAttribute('data-company-id') || '',
    salonId: root.getAttribute('data-salon-id') || '',
    wsPath: safeWsPath(root.getAttribute('data-ws-path')),
    returnUrl: root.getAttribute('data-return-url') || '',
    simulator: root.getAttribute('data-simulator') === '1'
  };

  // mode: 'qr' (want/showing a QR) | 'qr-expired' (waiting for the button) |
  //       'pairing' (a pairing code is shown) | 'done' (linked and connected) |
  //       'linked' (linked, the session not connected now: the reconnecting panel) |
  //       'dead' (link unusable)
  var state = {
    token: null,
    ws: null,
    mode: 'qr',
    attempt: 0,
    reconnectTimer: null,
    countdownTimer: null,
    pairingTimer: null,
    rateLimited: false,
    everOpened: false,
    connected: false,
    phone: '',
    leaving: false
  };

  // ------------------------------------------------------------------ token handling

  function takeTokenFromAddressBar() {
    var params;
    try {
      params = new URLSearchParams(window.location.search);
    } catch (e) {
      return null;
    }
    var token = params.get('token');
    var kept = new URLSearchParams();
    ['company', 'salon'].forEach(function (name) {
      var value = params.get(name);
      if (value !== null) {
        kept.set(name, value);
      }
    });
    var query = kept.toString();
    var clean = window.location.pathname + (query ? '?' + query : '');
    if (clean !== window.location.pathname + window.location.search) {
      try {
        window.history.replaceState(null, '', clean);
      } catch (e) {
        // Very old browsers: nothing better to do; the token still works from memory.
      }
    }
    if (!token || token.length > MAX_TOKEN_LENGTH) {
      return null;
    }
    return token;
  }

  // ------------------------------------------------------------------------- view

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

  function setStatus(text, tone) {
    setText(el.statusText, text);
    if (el.statusDot) {
      el.statusDot.className = 'status-dot' + (tone ? ' status-' + tone : '');
    }
  }

  function showError(text) {
    setText(el.errorBanner, text);
    show(el.errorBanner, true);
  }

  function clearError() {
    setText(el.errorBanner, '');
    show(el.errorBanner, false);
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

  function stopCountdown() {
    if (state.countdownTimer !== null) {
      clearInterval(state.countdownTimer);
      state.countdownTimer = null;
    }
  }

  function startCountdown(seconds) {
    stopCountdown();
    // Against a deadline, not by counting ticks: background tabs throttle timers.
    var deadline = Date.now() + seconds * 1000;
    function tick() {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (left > 0) {
        setText(el.qrCountdown, 'Код действует ещё ' + left + ' с');
      } else if (left > -QR_STALE_AFTER_S) {
        setText(el.qrCountdown, TEXT.qrRefreshing);
      } else {
        // No fresh code arrived: never leave the user without a way forward.
        stopCountdown();
        offerNewQr();
      }
    }
    tick();
    state.countdownTimer = setInterval(tick, 1000);
  }

  function hideQr() {
    stopCountdown();
    show(el.qrImage, false);
    if (el.qrImage) {
      el.qrImage.removeAttribute('src');
    }
  }

  function enablePairingButton() {
    if (state.pairingTimer !== null) {
      clearTimeout(state.pairingTimer);
      state.pairingTimer = null;
    }
    if (el.pairingSubmit) {
      el.pairingSubmit.disabled = false;
    }
  }

  function reveal(node) {
    // On a phone the panel that just changed may be below the fold.
    if (node && typeof node.scrollIntoView === 'function') {
      try {
        node.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      } catch (e) {
        node.scrollIntoView();
      }
    }
  }

  function showSuccess(phone) {
    state.mode = 'done';
    hideQr();
    clearError();
    enablePairingButton();
    show(el.qrPanel, false);
    show(el.pairingPanel, false);
    show(el.devPanel, false);
    show(el.expiredPanel, false);
    show(el.reconnectingPanel, false);
    setText(el.successPhone, formatPhone(phone) || '—');
    show(el.successPanel, true);
    show(el.cabinetPanel, true);
    reveal(el.successPanel);
    setStatus(TEXT.connected, 'ok');
    if (el.returnLink && /^https?:\/\//i.test(config.returnUrl)) {
      el.returnLink.setAttribute('href', config.returnUrl);
    }
  }

  function showExpired(text, status) {
    state.mode = 'dead';
    hideQr();
    enablePairingButton();
    clearError();
    cancelReconnect();
    show(el.qrPanel, false);
    show(el.pairingPanel, false);
    show(el.devPanel, false);
    show(el.successPanel, false);
    show(el.reconnectingPanel, false);
    show(el.cabinetPanel, false);
    if (text) {
      setText(el.expiredText, text);
    }
    show(el.expiredPanel, true);
    reveal(el.expiredPanel);
    setStatus(status || TEXT.expired, 'error');
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

  function offerNewQr() {
    state.mode = 'qr-expired';
    hideQr();
    show(el.qrPlaceholder, false);
    setText(el.qrCountdown, TEXT.qrExpiredHint);
    show(el.newQrButton, true);
    setStatus(TEXT.qrExpired, 'warn');
  }

  function showLinked(cause, phone) {
    // Linked, but the session is not connected now: no QR code, no error, what happens next.
    var view = LINKED_VIEW[cause] || LINKED_VIEW.reconnecting;
    var firstTime = state.mode !== 'linked';
    state.mode = 'linked';
    hideQr();
    clearError();
    enablePairingButton();
    show(el.qrPanel, false);
    show(el.pairingPanel, false);
    show(el.devPanel, false);
    show(el.expiredPanel, false);
    show(el.successPanel, false);
    setText(el.reconnectingTitle, view.title);
    setText(el.reconnectingText, view.text);
    var shown = formatPhone(phone);
    setText(el.reconnectingPhone, shown);
    show(el.reconnectingPhoneLine, !!shown);
    show(el.resumeButton, cause === 'replaced');
    if (el.resumeButton) {
      el.resumeButton.disabled = false;
    }
    show(el.reconnectingPanel, true);
    show(el.cabinetPanel, true);
    if (firstTime) {
      reveal(el.reconnectingPanel);
    }
    setStatus(view.status, 'warn');
    if (el.reconnectingReturnLink && /^https?:\/\//i.test(config.returnUrl)) {
      el.reconnectingReturnLink.setAttribute('href', config.returnUrl);
    }
  }

  function linkedCause(data) {
    if (data.banned) {
      return 'banned';
    }
    return data.replaced ? 'replaced' : 'reconnecting';
  }

  function stopWaitingForQr() {
    // A refused or failed request-qr: no endless spinner, a button to try again instead.
    if (state.mode === 'qr' && el.qrImage && el.qrImage.hidden) {
      offerNewQr();
    }
  }

  function backToQr() {
    // After an unlink from the phone: the linking panels come back with a "new code" button.
    show(el.successPanel, false);
    show(el.reconnectingPanel, false);
    show(el.cabinetPanel, false);
    show(el.qrPanel, true);
    show(el.pairingPanel, true);
    show(el.pairingResult, false);
    show(el.devPanel, config.simulator);
    offerNewQr();
  }

  // ------------------------------------------------------------------- socket I/O

  function send(event, data) {
    var ws = state.ws;
    if (!ws || ws.readyState !== 1) {
      return false;
    }
    try {
      ws.send(JSON.stringify({ event: event, data: data || {} }));
      return true;
    } catch (e) {
      return false;
    }
  }

  function requestQr() {
    state.mode = 'qr';
    clearError();
    show(el.newQrButton, false);
    show(el.qrPlaceholder, true);
    setText(el.qrCountdown, '');
    if (send('request-qr', {})) {
      setStatus(TEXT.requestingQr);
      return true;
    }
    return false;
  }

  function cancelReconnect() {
    if (state.reconnectTimer !== null) {
      clearTimeout(state.reconnectTimer);
      state.reconnectTimer = null;
    }
  }

  function scheduleReconnect() {
    cancelReconnect();
    if (state.mode === 'done' || state.mode === 'dead' || state.leaving) {
      return;
    }
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, state.attempt));
    if (state.rateLimited) {
      delay = Math.max(delay, RATE_LIMIT_WAIT_MS);
      state.rateLimited = false;
    }
    state.attempt = Math.min(state.attempt + 1, 16);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function connectionLost() {
    if (state.mode === 'done' || state.mode === 'dead' || state.leaving) {
      return;
    }
    enablePairingButton();
    setStatus(TEXT.reconnecting, 'warn');
    scheduleReconnect();
  }

  function connect() {
    cancelReconnect();
    if (state.mode === 'done' || state.mode === 'dead' || state.ws) {
      return;
    }
    var scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    var ws;
    try {
      ws = new WebSocket(scheme + '://' + window.location.host + config.wsPath);
    } catch (e) {
      connectionLost();
      return;
    }
    state.ws = ws;
    if (!state.everOpened) {
      setStatus(TEXT.connecting);
    }

    ws.onopen = function () {
      if (state.ws !== ws) {
        return;
      }
      state.everOpened = true;
      send('auth', { token: state.token });
      if (state.mode === 'qr') {
        requestQr();
      } else if (state.mode === 'linked') {
        // Linked already: the status frame that follows says whether it is connected.
        setStatus(LINKED_VIEW.reconnecting.status, 'warn');
      } else if (state.mode === 'pairing') {
        // Keep the shown pairing code (it may still be valid), but offer a fresh QR too.
        hideQr();
        show(el.qrPlaceholder, false);
        show(el.newQrButton, true);
        setStatus(TEXT.enterCode);
      } else {
        setStatus(TEXT.qrExpired, 'warn');
      }
    };

    ws.onmessage = function (event) {
      if (state.ws !== ws) {
        return;
      }
      // The server answered: this connection works, so the next loss starts over at 1 s.
      state.attempt = 0;
      handleFrame(event.data);
    };

    ws.onclose = function () {
      if (state.ws !== ws) {
        return;
      }
      state.ws = null;
      connectionLost();
    };

    ws.onerror = function () {
      // A close event always follows; reconnecting is handled there.
    };
  }

  // ------------------------------------------------------------------ server frames

  var HANDLERS = {
    'qr-update': function (data) {
      if (state.mode === 'done' || state.mode === 'dead') {
        return;
      }
      var image = data.qr_image;
      if (typeof image !== 'string' || image.indexOf('data:image/png;base64,') !== 0) {
        return;
      }
      if (state.mode !== 'pairing') {
        state.mode = 'qr';
      }
      clearError();
      show(el.qrPlaceholder, false);
      show(el.newQrButton, false);
      if (el.qrImage) {
        el.qrImage.setAttribute('src', image);
      }
      show(el.qrImage, true);
      var seconds = Number(data.expiresIn);
      if (!isFinite(seconds) || seconds <= 0) {
        seconds = 20;
      }
      startCountdown(Math.min(Math.round(seconds), 600));
      if (state.mode === 'qr') {
        setStatus(TEXT.scanQr);
      }
    },

    'qr-expired': function () {
      if (state.mode === 'done' || state.mode === 'dead') {
        return;
      }
      offerNewQr();
    },

    'pairing-code': function (data) {
      if (state.mode === 'done' || state.mode === 'dead') {
        return;
      }
      var code = String(data.code || '').replace(/[^0-9A-Za-z]/g, '').toUpperCase();
      if (!code) {
        return;
      }
      state.mode = 'pairing';
      enablePairingButton();
      clearError();
      if (code.length === 8) {
        code = code.slice(0, 4) + '-' + code.slice(4);
      }
      setText(el.pairingCode, code.slice(0, 20));
      show(el.pairingResult, true);
      reveal(el.pairingResult);
      setStatus(TEXT.enterCode);
    },

    'whatsapp-connected': function (data) {
      if (data.success === false) {
        showError(TEXT.connectFailed);
        stopWaitingForQr();
        return;
      }
      showSuccess(data.phone);
    },

    status: function (data) {
      var status = typeof data.status === 'string' ? data.status : '';
      var linked = status === 'active' || status === 'reconnecting';
      state.connected = linked && data.whatsapp_connected === true;
      state.phone = typeof data.phone === 'string' ? data.phone : '';
      if (state.mode === 'dead') {
        return;
      }
      if (state.connected && !data.banned) {
        showSuccess(data.phone);
        return;
      }
      if (linked) {
        showLinked(linkedCause(data), data.phone);
        return;
      }
      if ((state.mode === 'done' || state.mode === 'linked') && status === 'logged_out') {
        backToQr();
      }
      if (state.mode === 'done' || state.mode === 'linked') {
        return;
      }
      var text = Object.prototype.hasOwnProperty.call(STATUS_TEXT, status)
        ? STATUS_TEXT[status]
        : TEXT.unknownStatus;
      var tone = status === 'activation_failed' || status === 'uninstalled' ? 'error'
        : status === 'frozen' || status === 'logged_out' ? 'warn'
        : '';
      setStatus(text, tone);
    },

    error: function (data) {
      var code = typeof data.code === 'string' ? data.code : '';
      enablePairingButton();
      if (code === 'token_expired' || code === 'invalid_token') {
        showExpired();
        return;
      }
      if (code === 'forbidden' || code === 'uninstalled') {
        showExpired(ERROR_TEXT[code], code === 'uninstalled' ? STATUS_TEXT.uninstalled : TEXT.otherSalon);
        return;
      }
      if (code === 'already_linked') {
        // Not an error: the salon is linked (its request-qr is refused). Show which state.
        if (state.connected) {
          showSuccess(state.phone);
        } else if (state.mode !== 'linked') {
          showLinked('reconnecting', state.phone);
        }
        return;
      }
      if (state.mode === 'linked' && code !== 'rate_limited' && code !== 'unavailable') {
        if (el.resumeButton) {
          el.resumeButton.disabled = false;
        }
      }
      if (code === 'rate_limited') {
        state.rateLimited = true;
      }
      showError(Object.prototype.hasOwnProperty.call(ERROR_TEXT, code)
        ? ERROR_TEXT[code]
        : TEXT.genericError);
      if (!Object.prototype.hasOwnProperty.call(NOT_ABOUT_THE_QR, code)) {
        stopWaitingForQr();
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
    if (!frame || typeof frame !== 'object' || typeof frame.event !== 'string') {
      return;
    }
    if (!Object.prototype.hasOwnProperty.call(HANDLERS, frame.event)) {
      return;
    }
    var data = frame.data && typeof frame.data === 'object' ? frame.data : {};
    HANDLERS[frame.event](data);
  }

  // ------------------------------------------------------------------- user actions

  if (el.newQrButton) {
    el.newQrButton.addEventListener('click', function () {
      if (!requestQr()) {
        showError(TEXT.noConnection);
        show(el.newQrButton, true);
        show(el.qrPlaceholder, false);
      }
    });
  }

  if (el.resumeButton) {
    el.resumeButton.addEventListener('click', function () {
      // request-qr takes a session stopped here (opened elsewhere) back: no QR code needed.
      if (!send('request-qr', {})) {
        showError(TEXT.noConnection);
        return;
      }
      clearError();
      el.resumeButton.disabled = true;
      setStatus(TEXT.resuming, 'warn');
    });
  }

  if (el.pairingForm) {
    el.pairingForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var phone = el.pairingPhone ? String(el.pairingPhone.value || '').trim() : '';
      var digits = phone.replace(/\D/g, '');
      if (digits.length < 10 || digits.length > 15 || /[^0-9+()\-.\s]/.test(phone)) {
        showError(TEXT.badPhone);
        if (el.pairingPhone) {
          el.pairingPhone.focus();
        }
        return;
      }
      if (!send('request-pairing-code', { phone: phone })) {
        showError(TEXT.noConnection);
        return;
      }
      clearError();
      setStatus(TEXT.requestingCode);
      if (el.pairingSubmit) {
        // Against double submits; re-enabled by the answer, an error, or after a while.
        el.pairingSubmit.disabled = true;
        state.pairingTimer = setTimeout(enablePairingButton, PAIRING_RETRY_MS);
      }
    });
  }

  if (el.simulateScan) {
    if (!config.simulator) {
      show(el.devPanel, false);
    } else {
      el.simulateScan.addEventListener('click', function () {
        if (!send('simulate-scan', {})) {
          showError(TEXT.noConnection);
        }
      });
    }
  }

  // The salon's own page opens in a new top-level tab: a form posts the in-memory token (in
  // the body, never in a URL) to /marketplace/salon/session, which sets the session cookie and
  // sends that tab on to /marketplace/salon (its refusals are pages shown there). Not a fetch:
  // this page may sit in YClients' iframe, where a cookie set in answer to the frame's own
  // request is refused as a third-party one; a top-level tab keeps it. Built at click time so
  // the token is in the document only for the moment of the submit.
  if (el.openSalon) {
    el.openSalon.addEventListener('click', function () {
      if (!state.token) {
        showCabinetError(TEXT.genericError);
        return;
      }
      showCabinetError('');
      var form = document.createElement('form');
      form.method = 'post';
      form.action = '/marketplace/salon/session';
      form.target = '_blank';
      form.rel = 'noopener';
      form.hidden = true;
      var field = document.createElement('input');
      field.type = 'hidden';
      field.name = 'token';
      field.value = state.token;
      form.appendChild(field);
      document.body.appendChild(form);
      try {
        form.submit();
      } finally {
        document.body.removeChild(form);
      }
    });
  }

  function showCabinetError(text) {
    setText(el.cabinetError, text);
    show(el.cabinetError, !!text);
  }

  // Reconnect at once when the network or the tab comes back instead of waiting out the backoff.
  function reconnectNow() {
    if (!state.ws && state.reconnectTimer !== null) {
      state.attempt = 0;
      connect();
    }
  }

  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') {
      reconnectNow();
    }
  });
  window.addEventListener('pagehide', function () {
    state.leaving = true;
    cancelReconnect();
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) {
      // Back from the back/forward cache: the old socket is gone.
      state.leaving = false;
      state.ws = null;
      state.attempt = 0;
      connect();
    }
  });

  // --------------------------------------------------------------------------- start

  state.token = takeTokenFromAddressBar();
  if (!state.token) {
    showExpired(TEXT.noToken);
    return;
  }
  if (!window.WebSocket) {
    showError(TEXT.noWebSocket);
    setStatus(TEXT.noWebSocket, 'error');
    return;
  }
  connect();
})();
