// Mesh Workbench GraphQL playground: starts GraphiQL (vendored next to this file) against the
// tenant endpoint named in this script tag's data-endpoint attribute. No network access beyond
// this service: every asset and request goes to the page's own origin (the login is a top-level
// navigation to the Identity service, see playground-auth.js).
//
// data-auth-mode says how requests authenticate:
//   identity - log in through Identity (automatic redirect when this tab holds no token for the
//              tenant); every request carries "Authorization: Bearer <access token>"
//   header   - development static token: the headers editor holds an Authorization template
//   none     - --no-auth: nothing to send
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script.getAttribute("data-endpoint");
  var tenant = script.getAttribute("data-tenant") || "";
  var mode = script.getAttribute("data-auth-mode") || "header";
  var wsEndpoint =
    (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + endpoint;
  var defaultQuery = script.getAttribute("data-default-query") || undefined;
  var mount = document.getElementById("graphiql");
  var here = window.location.pathname + window.location.search;

  function render(fetcher, defaultHeaders) {
    var root = ReactDOM.createRoot(mount);
    root.render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        defaultQuery: defaultQuery,
        defaultHeaders: defaultHeaders,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: mode !== "identity",
        defaultEditorToolsVisibility: true,
      })
    );
  }

  if (mode !== "identity") {
    // GraphiQL passes the headers typed into its headers editor as the WebSocket connection_init
    // payload too, so subscriptions authenticate like queries (Authorization: Bearer ...).
    render(
      GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: wsEndpoint }),
      script.getAttribute("data-default-headers") || undefined
    );
    return;
  }

  var auth = window.WorkbenchPlaygroundAuth.fromElement(script);
  var bar = document.getElementById("wb-auth");
  var status = document.getElementById("wb-auth-status");
  var loginButton = document.getElementById("wb-login");
  var logoutButton = document.getElementById("wb-logout");
  bar.hidden = false;

  function login(prompt) {
    status.textContent = "Redirecting to the login…";
    loginButton.disabled = true;
    auth.login(tenant, here, prompt ? { prompt: prompt } : undefined).catch(function (error) {
      loginButton.disabled = false;
      status.textContent = "Could not start the login: " + error.message;
    });
  }

  function showLoggedIn() {
    var user = auth.user(tenant);
    status.textContent = "";
    var who = document.createElement("strong");
    who.id = "wb-user";
    who.textContent = user.username;
    status.appendChild(document.createTextNode("Logged in as "));
    status.appendChild(who);
    if (user.name && user.name !== user.username) {
      status.appendChild(document.createTextNode(" (" + user.name + ")"));
    }
    status.appendChild(document.createTextNode(" · tenant " + user.tenant));
    loginButton.hidden = true;
    logoutButton.hidden = false;
  }

  function showLoggedOut(message) {
    status.textContent = message;
    loginButton.hidden = false;
    loginButton.disabled = false;
    logoutButton.hidden = true;
  }

  loginButton.addEventListener("click", function () {
    login(null);
  });
  logoutButton.addEventListener("click", function () {
    logoutButton.disabled = true;
    status.textContent = "Logging out…";
    auth.logout(here);
  });

  if (!auth.tokens(tenant)) {
    if (auth.loggedOut()) {
      mount.textContent = "";
      showLoggedOut("You are logged out. Log in to query tenant " + tenant + ".");
    } else {
      mount.textContent = "Redirecting to the login…";
      login(null);
    }
    return;
  }
  showLoggedIn();

  function withToken(init, token) {
    var headers = new Headers((init && init.headers) || {});
    headers.set("Authorization", "Bearer " + token);
    return Object.assign({}, init, { headers: headers });
  }

  function loginExpired(error) {
    showLoggedOut(error.message || "Your login has expired; press Log in.");
    throw error;
  }

  // HTTP requests: the current token (refreshed when it is about to expire); on a 401 refresh
  // once and retry, else ask to log in again.
  function authorizedFetch(url, init) {
    return auth.accessToken(tenant).then(function (token) {
      return window.fetch(url, withToken(init, token)).then(function (response) {
        if (response.status !== 401) return response;
        return auth.accessToken(tenant, true).then(function (fresh) {
          return window.fetch(url, withToken(init, fresh));
        }, loginExpired);
      });
    }, loginExpired);
  }

  var base = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: wsEndpoint,
    fetch: authorizedFetch,
  });

  // Subscriptions take their connection_init payload from the headers: put the token there too.
  function fetcher(params, options) {
    return auth.accessToken(tenant).then(function (token) {
      var headers = Object.assign({}, (options && options.headers) || {}, {
        Authorization: "Bearer " + token,
      });
      return base(params, Object.assign({}, options, { headers: headers }));
    }, loginExpired);
  }

  render(fetcher, undefined);
})();
