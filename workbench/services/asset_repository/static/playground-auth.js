// Mesh Workbench playground login: OAuth 2.0 authorization code with PKCE (S256) against the
// Identity service, as the public client named in the page's configuration.
//
// The browser goes to Identity's /authorize (top-level navigation) and comes back to this
// service's /playground/callback; the code is exchanged for tokens through this service's own
// /playground/token (same origin, so the page's CSP can stay connect-src 'self'). Tokens live in
// sessionStorage, one entry per tenant; the refresh token is used shortly before the access
// token expires (each use rotates it, so refreshes are never run in parallel).
(function () {
  "use strict";

  var PREFIX = "workbench.playground.";
  var EXPIRY_MARGIN_MS = 30 * 1000;

  function LoginRequired(message) {
    var error = new Error(message || "You are not logged in; press Log in.");
    error.name = "LoginRequired";
    return error;
  }

  // ---------------------------------------------------------------- encoding helpers

  function base64Url(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString(byteCount) {
    var bytes = new Uint8Array(byteCount);
    window.crypto.getRandomValues(bytes);
    return base64Url(bytes);
  }

  function decodeJwt(token) {
    try {
      var part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      var binary = atob(part);
      var bytes = new Uint8Array(binary.length);
      for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return {};
    }
  }

  // SHA-256 of an ASCII string. WebCrypto only exists in secure contexts (https, localhost,
  // 127.0.0.1); a service reached over plain http on another address gets this fallback.
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
  ];

  function sha256Fallback(ascii) {
    var bytes = [];
    for (var i = 0; i < ascii.length; i++) bytes.push(ascii.charCodeAt(i) & 0xff);
    var bitLength = bytes.length * 8;
    bytes.push(0x80);
    while (bytes.length % 64 !== 56) bytes.push(0);
    for (var s = 56; s >= 0; s -= 8) bytes.push(s >= 32 ? 0 : (bitLength >>> s) & 0xff);
    var h = [
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
      0x5be0cd19,
    ];
    var w = new Array(64);
    function rotr(x, n) {
      return (x >>> n) | (x << (32 - n));
    }
    for (var offset = 0; offset < bytes.length; offset += 64) {
      for (var t = 0; t < 16; t++) {
        var j = offset + t * 4;
        w[t] = ((bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3]) | 0;
      }
      for (t = 16; t < 64; t++) {
        var s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        var s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
    var out = new Uint8Array(32);
    for (i = 0; i < 8; i++) {
      out[i * 4] = (h[i] >>> 24) & 0xff;
      out[i * 4 + 1] = (h[i] >>> 16) & 0xff;
      out[i * 4 + 2] = (h[i] >>> 8) & 0xff;
      out[i * 4 + 3] = h[i] & 0xff;
    }
    return out;
  }

  function codeChallenge(verifier) {
    var subtle = window.crypto && window.crypto.subtle;
    if (!subtle) return Promise.resolve(base64Url(sha256Fallback(verifier)));
    return subtle
      .digest("SHA-256", new TextEncoder().encode(verifier))
      .then(function (digest) {
        return base64Url(new Uint8Array(digest));
      });
  }

  // ---------------------------------------------------------------- storage

  function readJson(key) {
    try {
      var raw = window.sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  function writeJson(key, value) {
    window.sessionStorage.setItem(key, JSON.stringify(value));
  }

  function take(key) {
    var value = readJson(key);
    window.sessionStorage.removeItem(key);
    return value;
  }

  function localPath(value, fallback) {
    // only a path on this origin: never send the browser elsewhere after a login
    if (typeof value === "string" && value.charAt(0) === "/" && value.charAt(1) !== "/" &&
        value.indexOf("\\") < 0) {
      return value;
    }
    return fallback;
  }

  function tokenKey(tenant) {
    return PREFIX + "tokens." + tenant;
  }

  // ---------------------------------------------------------------- the client

  function Client(config) {
    this.config = config;
    this._refreshing = {};
  }

  Client.fromElement = function (element) {
    return new Client({
      tenant: element.getAttribute("data-tenant") || "",
      authorizeUrl: element.getAttribute("data-authorize-url"),
      endSessionUrl: element.getAttribute("data-end-session-url"),
      clientId: element.getAttribute("data-client-id"),
      scope: element.getAttribute("data-scope"),
      redirectUri: element.getAttribute("data-redirect-uri"),
      tokenUrl: element.getAttribute("data-token-url"),
      revokeUrl: element.getAttribute("data-revoke-url"),
    });
  };

  Client.LoginRequired = LoginRequired;
  Client.decodeJwt = decodeJwt;

  // Send the browser to the Identity login for ``tenant``; come back to ``returnTo``.
  Client.prototype.login = function (tenant, returnTo, options) {
    var config = this.config;
    var verifier = randomString(48);
    var state = randomString(24);
    var nonce = randomString(24);
    window.sessionStorage.removeItem(PREFIX + "loggedOut");
    return codeChallenge(verifier).then(function (challenge) {
      writeJson(PREFIX + "pending." + state, {
        verifier: verifier,
        tenant: tenant,
        nonce: nonce,
        returnTo: localPath(returnTo, "/"),
        created: Date.now(),
      });
      var params = new URLSearchParams({
        response_type: "code",
        client_id: config.clientId,
        redirect_uri: config.redirectUri,
        scope: config.scope,
        state: state,
        nonce: nonce,
        code_challenge: challenge,
        code_challenge_method: "S256",
        acr_values: "tenant:" + tenant,
      });
      if (options && options.prompt) params.set("prompt", options.prompt);
      window.location.assign(config.authorizeUrl + "?" + params.toString());
    });
  };

  // On the callback page: the result of Identity's redirect. Resolves to the path to return to.
  Client.prototype.finishLogin = function (search) {
    var self = this;
    var params = new URLSearchParams(search);
    var state = params.get("state") || "";
    var loggedOut = state ? take(PREFIX + "logout." + state) : null;
    if (loggedOut) return Promise.resolve({ returnTo: localPath(loggedOut.returnTo, "/") });
    var pending = state ? take(PREFIX + "pending." + state) : null;
    if (!pending) {
      return Promise.reject(
        new Error(
          "This login was not started in this browser tab, or it has already been completed. " +
            "Open the playground again to log in."
        )
      );
    }
    var failure = function (message) {
      var error = new Error(message);
      error.tenant = pending.tenant;
      error.returnTo = pending.returnTo;
      return Promise.reject(error);
    };
    if (params.get("error")) {
      var reason = params.get("error");
      var hint = reason === "access_denied"
        ? "the signed-in user may not use tenant '" + pending.tenant + "'. Log in as a user of " +
          "that tenant."
        : params.get("error_description") || "the login was not completed.";
      return failure("The Identity service refused the login (" + reason + "): " + hint);
    }
    var code = params.get("code");
    if (!code) return failure("The Identity service sent no authorization code.");
    return this._tokenRequest({
      grant_type: "authorization_code",
      code: code,
      code_verifier: pending.verifier,
    }).then(
      function (tokens) {
        if (tokens.id_token && decodeJwt(tokens.id_token).nonce !== pending.nonce) {
          return failure("The ID token does not belong to this login (nonce mismatch).");
        }
        self._store(pending.tenant, tokens, null);
        return { returnTo: pending.returnTo, tenant: pending.tenant };
      },
      function (error) {
        return failure("Exchanging the authorization code failed: " + error.message);
      }
    );
  };

  Client.prototype._tokenRequest = function (body) {
    return window
      .fetch(this.config.tokenUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      })
      .then(function (response) {
        return response.json().then(
          function (data) {
            if (!response.ok || !data.access_token) {
              var error = new Error(
                (data && (data.error_description || data.error)) || "HTTP " + response.status
              );
              error.status = response.status;
              throw error;
            }
            return data;
          },
          function () {
            throw new Error("HTTP " + response.status + " without a readable answer");
          }
        );
      });
  };

  Client.prototype._store = function (tenant, tokens, previous) {
    var expiresIn = Number(tokens.expires_in) || 300;
    var record = {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token || (previous && previous.refreshToken) || null,
      idToken: tokens.id_token || (previous && previous.idToken) || null,
      expiresAt: Date.now() + expiresIn * 1000,
      scope: tokens.scope || "",
    };
    writeJson(tokenKey(tenant), record);
    return record;
  };

  Client.prototype.tokens = function (tenant) {
    return readJson(tokenKey(tenant || this.config.tenant));
  };

  // Who the tokens of ``tenant`` belong to (from the ID token, else the access token).
  Client.prototype.user = function (tenant) {
    var record = this.tokens(tenant);
    if (!record) return null;
    var access = decodeJwt(record.accessToken);
    var id = record.idToken ? decodeJwt(record.idToken) : {};
    return {
      username: id.preferred_username || access.preferred_username || access.sub || "unknown",
      name: id.name || "",
      tenant: access.tenant_id || tenant,
      expiresAt: record.expiresAt,
    };
  };

  // A valid access token for ``tenant``: the stored one, or a refreshed one when it expires
  // within the margin (or ``force``). Rejects with LoginRequired when a login is needed.
  Client.prototype.accessToken = function (tenant, force) {
    var self = this;
    tenant = tenant || this.config.tenant;
    var record = this.tokens(tenant);
    if (!record) return Promise.reject(LoginRequired());
    if (!force && record.expiresAt - EXPIRY_MARGIN_MS > Date.now()) {
      return Promise.resolve(record.accessToken);
    }
    if (!record.refreshToken) {
      this.forget(tenant);
      return Promise.reject(LoginRequired("Your login has expired; press Log in."));
    }
    if (!this._refreshing[tenant]) {
      this._refreshing[tenant] = this._tokenRequest({
        grant_type: "refresh_token",
        refresh_token: record.refreshToken,
      })
        .then(
          function (tokens) {
            return self._store(tenant, tokens, record).accessToken;
          },
          function () {
            self.forget(tenant);
            throw LoginRequired("Your login has expired; press Log in to continue.");
          }
        )
        .finally(function () {
          delete self._refreshing[tenant];
        });
    }
    return this._refreshing[tenant];
  };

  Client.prototype.forget = function (tenant) {
    window.sessionStorage.removeItem(tokenKey(tenant || this.config.tenant));
  };

  // Log out: revoke the refresh token, forget every tenant's tokens in this tab and end the
  // Identity session (which comes back to the callback page when Identity knows its address).
  Client.prototype.logout = function (returnTo) {
    var config = this.config;
    var refreshTokens = [];
    for (var i = window.sessionStorage.length - 1; i >= 0; i--) {
      var key = window.sessionStorage.key(i);
      if (key && key.indexOf(PREFIX + "tokens.") === 0) {
        var record = readJson(key);
        if (record && record.refreshToken) refreshTokens.push(record.refreshToken);
        window.sessionStorage.removeItem(key);
      }
    }
    window.sessionStorage.setItem(PREFIX + "loggedOut", "1");
    var state = randomString(24);
    writeJson(PREFIX + "logout." + state, { returnTo: localPath(returnTo, "/") });
    var revocations = refreshTokens.map(function (token) {
      return window
        .fetch(config.revokeUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: token }),
          credentials: "same-origin",
        })
        .catch(function () {
          return null;
        });
    });
    return Promise.all(revocations).then(function () {
      var params = new URLSearchParams({
        client_id: config.clientId,
        post_logout_redirect_uri: config.redirectUri,
        state: state,
      });
      window.location.assign(config.endSessionUrl + "?" + params.toString());
    });
  };

  Client.prototype.loggedOut = function () {
    return window.sessionStorage.getItem(PREFIX + "loggedOut") === "1";
  };

  window.WorkbenchPlaygroundAuth = Client;
})();
