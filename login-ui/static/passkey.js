// Passkeys for the hosted pages. A form marked data-passkey="create" or
// "get" fetches its WebAuthn options from data-options (posting the
// form's own fields, CSRF token included), asks the browser, puts the
// answer in the form's "credential" field and submits the form as usual.
// The login page's passkey form also starts a conditional request, so
// that passkeys appear in the username field's autofill. Without
// JavaScript or WebAuthn the passkey forms stay hidden.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

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
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = dec(pk.challenge);
    pk.user.id = dec(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = dec(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }
  function credentialJSON(c) {
    var r = c.response, out = {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: enc(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return out;
  }
  function fetchOptions(form) {
    return fetch(form.dataset.options, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (res) {
      if (!res.ok) throw new Error("options: " + res.status);
      return res.json();
    });
  }
  function showError(form) {
    var alert = document.querySelector("[role=alert]");
    if (alert) { alert.textContent = form.dataset.error || ""; alert.hidden = false; }
  }
  function finish(form, cred) {
    form.querySelector("[name=credential]").value = JSON.stringify(credentialJSON(cred));
    form.submit();
  }
  // The conditional request (autofill) waits in the background; pressing
  // the button aborts it, and the modal request starts once it has
  // settled (the browser allows one request at a time).
  var pending = null, settled = Promise.resolve();

  function ceremony(form, mediation) {
    return fetchOptions(form).then(function (o) {
      if (form.dataset.passkey === "create") {
        return navigator.credentials.create({ publicKey: creationOptions(o) });
      }
      var req = { publicKey: requestOptions(o) };
      if (!mediation) return navigator.credentials.get(req);
      pending = new AbortController();
      req.mediation = mediation;
      req.signal = pending.signal;
      var p = navigator.credentials.get(req);
      settled = p.then(function () {}, function () {});
      return p;
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (pending) { pending.abort(); pending = null; }
      settled.then(function () { return ceremony(form); })
        .then(function (cred) { finish(form, cred); }, function () { showError(form); });
    });
    if (form.dataset.conditional !== undefined && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        ceremony(form, "conditional").then(function (cred) { if (cred) finish(form, cred); }, function () {});
      });
    }
  });
})();
