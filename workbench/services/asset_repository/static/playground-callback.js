// Mesh Workbench playground: the page the Identity service redirects back to after a login
// (or a logout). It exchanges the authorization code for tokens (playground-auth.js) and returns
// to the tenant's playground; on failure it says why and offers to log in again.
(function () {
  "use strict";
  var script = document.currentScript;
  var auth = window.WorkbenchPlaygroundAuth.fromElement(script);
  var title = document.getElementById("wb-callback-title");
  var message = document.getElementById("wb-callback-message");
  var retry = document.getElementById("wb-callback-retry");
  var query = window.location.search;
  // the code is single-use and must not stay in the history or the address bar
  window.history.replaceState(null, "", window.location.pathname);

  auth.finishLogin(query).then(
    function (result) {
      window.location.replace(result.returnTo);
    },
    function (error) {
      title.textContent = "Login failed";
      message.textContent = error.message;
      if (error.tenant) {
        retry.hidden = false;
        retry.addEventListener("click", function () {
          retry.disabled = true;
          // prompt=login: show the login form even when Identity already has a session
          auth.login(error.tenant, error.returnTo, { prompt: "login" });
        });
      }
    }
  );
})();
