// The Online Inbox as an installed app (issue 17): registers the service worker, keeps the
// compose form's draft on this device until it is sent, opens messages in a reading pane beside
// the list on wide screens, and clears what this device kept when the user signs out.
// Everything here is an addition: without it every page and link works as a plain page.
(function () {
  'use strict';
  var DRAFT = 'draft:';

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  // --- the service worker -------------------------------------------------------------------
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/inbox/sw.js', { scope: '/inbox' }).catch(function () {});
  }

  // --- drafts: localStorage, keyed by mailbox (and what is answered), until sent ---------------
  function draftKey(form) {
    var v = function (n) { return form.elements[n] ? form.elements[n].value : ''; };
    return DRAFT + form.getAttribute('data-draft') + ':' + (v('mode') || 'new') + ':' + v('original');
  }
  var FIELDS = ['from', 'to', 'cc', 'bcc', 'subject', 'text'];

  function keepDrafts() {
    var ls = storage();
    var form = document.querySelector('form[data-draft]');
    var sending = null;
    try { sending = JSON.parse(window.sessionStorage.getItem('sending') || 'null'); } catch (e) {}
    if (sending) {
      window.sessionStorage.removeItem('sending');
      // Sent: the page after a successful send is the sent message (a refusal shows the form
      // again, and the draft stays).
      var recent = Date.now() - sending.at < 120000;
      if (ls && recent && !form && /^\/inbox\/[^/]+\/messages\/[^/]+$/.test(location.pathname)) {
        ls.removeItem(sending.key);
      }
    }
    if (!form || !ls) return;
    var key = draftKey(form);
    var saved = null;
    try { saved = JSON.parse(ls.getItem(key) || 'null'); } catch (e) {}
    if (saved && !document.querySelector('#main [role=alert]')) {
      FIELDS.forEach(function (n) {
        var el = form.elements[n];
        if (el && typeof saved[n] === 'string') el.value = saved[n];
      });
      var note = document.getElementById('draft-note');
      if (note) note.textContent = 'Draft restored from this device.';
    }
    var save = function () {
      var d = { at: Date.now() };
      FIELDS.forEach(function (n) { if (form.elements[n]) d[n] = form.elements[n].value; });
      try { ls.setItem(key, JSON.stringify(d)); } catch (e) {}
    };
    form.addEventListener('input', save);
    form.addEventListener('change', save);
    form.addEventListener('submit', function () {
      save();
      window.sessionStorage.setItem('sending', JSON.stringify({ key: key, at: Date.now() }));
    });
  }

  // --- sign-out: nothing of this user stays on the device -------------------------------------
  function clearDevice() {
    var ls = storage();
    if (ls) {
      for (var i = ls.length - 1; i >= 0; i--) {
        var k = ls.key(i);
        if (k && k.indexOf(DRAFT) === 0) ls.removeItem(k);
      }
    }
    if (!('caches' in window)) return Promise.resolve();
    return caches.keys().then(function (keys) {
      return Promise.all(keys.map(function (k) { return caches.delete(k); }));
    });
  }
  function hookSignOut() {
    var form = document.getElementById('sign-out');
    if (!form) return;
    form.addEventListener('submit', function (e) {
      if (form.getAttribute('data-cleared')) return;
      e.preventDefault();
      var done = function () { form.setAttribute('data-cleared', '1'); form.submit(); };
      clearDevice().then(done, done);
    });
  }

  // --- the reading pane (wide screens): a message opens beside the list -----------------------
  var wide = window.matchMedia ? window.matchMedia('(min-width: 900px)') : null;
  function hookPane() {
    var rows = document.getElementById('rows');
    var main = document.getElementById('main');
    if (!rows || !main || !wide || !window.fetch || !window.DOMParser) return;
    var pane = null;
    rows.addEventListener('click', function (e) {
      var a = e.target.closest ? e.target.closest('a[href*="/messages/"]') : null;
      if (!a || !wide.matches || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      fetch(a.href, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok || r.redirected) throw new Error('not a message');
        return r.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var content = doc.getElementById('main');
        if (!content) throw new Error('not a page');
        // One h1 per page: the message's headings go one level down inside the pane.
        ['h5', 'h4', 'h3', 'h2', 'h1'].forEach(function (h) {
          content.querySelectorAll(h).forEach(function (el) {
            var n = doc.createElement('h' + (Number(h[1]) + 1));
            n.innerHTML = el.innerHTML;
            el.replaceWith(n);
          });
        });
        if (!pane) {
          // The list's own content in one column, the pane in the other.
          var list = document.createElement('div');
          list.className = 'list-col';
          while (main.firstChild) list.appendChild(main.firstChild);
          pane = document.createElement('section');
          pane.id = 'pane';
          pane.setAttribute('aria-label', 'Message');
          main.classList.add('with-pane');
          main.appendChild(list);
          main.appendChild(pane);
        }
        pane.replaceChildren.apply(pane, Array.prototype.map.call(content.childNodes, function (n) {
          return document.importNode(n, true);
        }));
        rows.querySelectorAll('[aria-current]').forEach(function (el) { el.removeAttribute('aria-current'); });
        a.setAttribute('aria-current', 'true');
        var heading = pane.querySelector('h2');
        if (heading) { heading.tabIndex = -1; heading.focus(); }
      }).catch(function () { location.href = a.href; });
    });
  }

  function start() { keepDrafts(); hookSignOut(); hookPane(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
