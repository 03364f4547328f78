/*
 * AI Admin API reference (/docs): reads /openapi.json from this server and draws every
 * path and method with its summary, authentication, parameters, request body and responses,
 * then the shared schemas.
 *
 * No inline script (the page CSP forbids it), no framework, nothing from another origin.
 * Every text from the document is written with textContent (schemas as JSON text in <pre>),
 * never as HTML, so a description holding markup is shown, not run.
 */
(function () {
  'use strict';

  var METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  var AUTH_NAMES = {
    AdminKey: 'partner/admin key (X-API-Key)',
    CompanyKey: "the company's own sk_ key (X-API-Key)",
    CompanyToken: "the company's JWT (Authorization: Bearer)"
  };

  function byId(id) {
    return document.getElementById(id);
  }

  /* An element with optional class and text; text is always set as text. */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  /* A short type text for a parameter schema: "integer 1…2147483647", "string (enum …)". */
  function typeText(schema) {
    if (!schema || typeof schema !== 'object') {
      return '';
    }
    if (schema.$ref) {
      return String(schema.$ref).split('/').pop();
    }
    var type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type || 'any';
    var parts = [type];
    if (schema.minimum !== undefined || schema.maximum !== undefined) {
      parts.push((schema.minimum !== undefined ? schema.minimum : '') + '…' +
        (schema.maximum !== undefined ? schema.maximum : ''));
    }
    if (Array.isArray(schema['enum'])) {
      parts.push('one of ' + schema['enum'].join(', '));
    }
    if (schema['default'] !== undefined) {
      parts.push('default ' + schema['default']);
    }
    return parts.join(', ');
  }

  function authText(security) {
    if (!Array.isArray(security) || security.length === 0) {
      return 'none (public)';
    }
    return security.map(function (requirement) {
      return Object.keys(requirement).map(function (name) {
        return AUTH_NAMES[name] || name;
      }).join(' and ');
    }).join(', or ');
  }

  function operationId(method, path, operation) {
    var raw = operation.operationId || (method + path);
    return 'op-' + String(raw).replace(/[^A-Za-z0-9_-]/g, '-');
  }

  function parametersTable(parameters) {
    var table = el('table', 'parameters');
    var head = el('tr');
    ['Name', 'In', 'Required', 'Type', 'Description'].forEach(function (title) {
      head.appendChild(el('th', null, title));
    });
    table.appendChild(head);
    parameters.forEach(function (parameter) {
      var row = el('tr', 'parameter');
      row.appendChild(el('td', 'parameter-name')).appendChild(el('code', null, parameter.name));
      row.appendChild(el('td', null, parameter['in']));
      row.appendChild(el('td', null, parameter.required ? 'yes' : 'no'));
      row.appendChild(el('td', 'parameter-type', typeText(parameter.schema)));
      var schema = parameter.schema || {};
      row.appendChild(el('td', null, parameter.description || schema.description || ''));
      table.appendChild(row);
    });
    return table;
  }

  function contentBlocks(container, content) {
    Object.keys(content || {}).forEach(function (mediaType) {
      var media = content[mediaType] || {};
      container.appendChild(el('p', 'media-type muted', mediaType));
      if (media.schema !== undefined) {
        container.appendChild(el('pre', 'schema', json(media.schema)));
      }
    });
  }

  function operationCard(path, method, operation) {
    var card = el('article', 'operation');
    card.id = operationId(method, path, operation);
    card.setAttribute('data-search', (method + ' ' + path + ' ' + (operation.summary || '') +
      ' ' + (operation.description || '')).toLowerCase());
    var title = el('h2');
    title.appendChild(el('span', 'method method-' + method, method.toUpperCase()));
    title.appendChild(el('code', 'path', path));
    card.appendChild(title);
    if (operation.summary) {
      card.appendChild(el('p', 'summary', operation.summary));
    }
    if (operation.description) {
      card.appendChild(el('p', 'description muted', operation.description));
    }
    card.appendChild(el('p', 'auth', 'Authentication: ' + authText(operation.security)));

    var parameters = Array.isArray(operation.parameters) ? operation.parameters : [];
    if (parameters.length) {
      card.appendChild(el('h3', null, 'Parameters'));
      card.appendChild(el('div', 'table-scroll')).appendChild(parametersTable(parameters));
    }
    if (operation.requestBody) {
      card.appendChild(el('h3', null, 'Request body'));
      contentBlocks(card, operation.requestBody.content);
    }
    card.appendChild(el('h3', null, 'Responses'));
    var responses = operation.responses || {};
    Object.keys(responses).sort().forEach(function (status) {
      var response = responses[status] || {};
      var line = el('p', 'response');
      line.appendChild(el('code', 'status', status));
      line.appendChild(document.createTextNode(' ' + (response.description || '')));
      card.appendChild(line);
      contentBlocks(card, response.content);
    });
    return card;
  }

  function indexEntry(path, method, operation) {
    var item = el('li');
    var link = el('a');
    link.href = '#' + operationId(method, path, operation);
    link.appendChild(el('span', 'method method-' + method, method.toUpperCase()));
    link.appendChild(el('code', null, path));
    item.appendChild(link);
    item.setAttribute('data-target', operationId(method, path, operation));
    return item;
  }

  function render(doc) {
    var info = doc.info || {};
    byId('docs-title').textContent = info.title || 'API';
    document.title = (info.title || 'API') + ' — reference';
    byId('docs-version').textContent = 'Version ' + (info.version || '?') +
      ' · OpenAPI ' + (doc.openapi || '?');
    byId('docs-description').textContent = info.description || '';

    var operations = byId('docs-operations');
    var index = byId('docs-index-list');
    var paths = doc.paths || {};
    var count = 0;
    Object.keys(paths).sort().forEach(function (path) {
      var item = paths[path] || {};
      METHODS.forEach(function (method) {
        var operation = item[method];
        if (!operation) {
          return;
        }
        operations.appendChild(operationCard(path, method, operation));
        index.appendChild(indexEntry(path, method, operation));
        count += 1;
      });
    });
    byId('docs-index').hidden = false;

    var schemas = (doc.components && doc.components.schemas) || {};
    var list = byId('docs-schema-list');
    Object.keys(schemas).sort().forEach(function (name) {
      var block = el('div', 'schema-block');
      block.id = 'schema-' + name.replace(/[^A-Za-z0-9_-]/g, '-');
      block.appendChild(el('p', 'schema-name', name));
      block.appendChild(el('pre', 'schema', json(schemas[name])));
      list.appendChild(block);
    });
    byId('docs-schemas').hidden = Object.keys(schemas).length === 0;
    byId('docs-status').textContent = count + ' operations';
    document.body.setAttribute('data-loaded', 'true');
  }

  function applyFilter() {
    var words = byId('docs-filter').value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    var cards = document.querySelectorAll('#docs-operations .operation');
    Array.prototype.forEach.call(cards, function (card) {
      var text = card.getAttribute('data-search') || '';
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      card.hidden = !match;
      var entry = document.querySelector('#docs-index-list li[data-target="' + card.id + '"]');
      if (entry) {
        entry.hidden = !match;
      }
      shown += match ? 1 : 0;
    });
    byId('docs-status').textContent = shown + ' of ' + cards.length + ' operations';
  }

  function fail(message) {
    var status = byId('docs-status');
    status.textContent = 'Could not load /openapi.json: ' + message;
    status.className = 'error';
    document.body.setAttribute('data-loaded', 'error');
  }

  byId('docs-filter').addEventListener('input', applyFilter);
  fetch('/openapi.json', { headers: { Accept: 'application/json' }, credentials: 'omit' })
    .then(function (response) {
      if (!response.ok) {
        throw new Error('HTTP ' + response.status);
      }
      return response.json();
    })
    .then(render)
    .catch(function (error) {
      fail(error && error.message ? error.message : String(error));
    });
}());
