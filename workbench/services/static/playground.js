// Mesh Workbench GraphQL playground: starts GraphiQL (vendored next to this file) against the
// tenant endpoint named in this script tag's data-endpoint attribute. No network access beyond
// this service: every asset and request goes to the page's own origin.
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script.getAttribute("data-endpoint");
  var wsEndpoint =
    (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + endpoint;
  var defaultQuery = script.getAttribute("data-default-query") || undefined;

  // GraphiQL passes the headers typed into its headers editor as the WebSocket connection_init
  // payload too, so subscriptions authenticate like queries (Authorization: Bearer ...).
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: wsEndpoint,
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: script.getAttribute("data-default-headers") || undefined,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: true,
    })
  );
})();
