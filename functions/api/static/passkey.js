// Passkeys (U11): the browser's half of the WebAuthn ceremonies. The server's JSON carries
// binary fields as base64url; the browser's API wants ArrayBuffers, and its answer goes back
// as base64url. Sign-in by code works without this script.
(function () {
  "use strict";
  var section = document.getElementById("passkey");
  var status = document.getElementById("passkey-status");
  if (!section || !window.PublicKeyCredential || !navigator.credentials) return;
  section.hidden = false;

  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function enc(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = dec(c.id); });
  }
  function answer(c) {
    var r = c.response;
    var out = {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: enc(r.clientDataJSON) }
    };
    if (r.attestationObject) out.response.attestationObject = enc(r.attestationObject);
    if (r.getTransports) out.response.transports = r.getTransports();
    if (r.authenticatorData) {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      out.response.userHandle = r.userHandle ? enc(r.userHandle) : null;
    }
    return out;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error((j.error && j.error.message) || ("HTTP " + r.status));
        return j;
      });
    });
  }
  function say(text) { if (status) status.textContent = text; }

  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) signIn.addEventListener("click", function () {
    say("Waiting for your passkey...");
    post("/auth/passkey/start", {}).then(function (s) {
      var o = s.options.publicKey;
      o.challenge = dec(o.challenge);
      ids(o.allowCredentials);
      return navigator.credentials.get({ publicKey: o }).then(function (c) {
        return post("/auth/passkey/finish", {
          ceremony: s.ceremony, credential: answer(c), next: signIn.dataset.next
        });
      });
    }).then(function (done) {
      say("Signed in.");
      window.location.assign(done.next);
    }).catch(function (e) { say("No sign-in: " + e.message); });
  });

  var add = document.getElementById("passkey-add");
  if (add) add.addEventListener("click", function () {
    var label = document.getElementById("passkey-label");
    say("Follow your device's prompt...");
    post("/api/v1/passkeys/registration", { label: label ? label.value : "" }).then(function (s) {
      var o = s.options.publicKey;
      o.challenge = dec(o.challenge);
      o.user.id = dec(o.user.id);
      ids(o.excludeCredentials);
      return navigator.credentials.create({ publicKey: o }).then(function (c) {
        return post("/api/v1/passkeys", { ceremony: s.ceremony, credential: answer(c) });
      });
    }).then(function () {
      say("Passkey added.");
      window.location.reload();
    }).catch(function (e) { say("Not added: " + e.message); });
  });
})();
