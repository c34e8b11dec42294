// billgraph's GraphiQL: the editor, the header editor (where the API key goes, kept in this
// browser's localStorage) and the explorer, over HTTP for queries and mutations and over a
// WebSocket (graphql-transport-ws) for subscriptions. Everything loads from this server.
(function () {
  "use strict";

  const DEFAULT_QUERY = `# billgraph. Put your API key in Headers, below:
#
#   {"Authorization": "Bearer bgk_..."}
#
# Run: Ctrl-Enter or the play button. Complete: Ctrl-Space.
{
  viewer {
    id
    name
    defaultCurrency
  }
}
`;

  // ?q=...&variables=... share an operation (never the headers: they hold the key). Not
  // ?query=: GET /graphql with a query runs it instead of showing this page.
  const parameters = Object.fromEntries(new URLSearchParams(window.location.search));

  function updateURL(changes) {
    Object.assign(parameters, changes);
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(parameters)) {
      if (value) search.set(name, value);
    }
    const query = search.toString();
    history.replaceState(null, "", query ? "?" + query : window.location.pathname);
  }

  const url = window.location.href.split(/[?#]/)[0];
  const subscriptionUrl = url.replace(/^http/, "ws");

  // A socket authenticates once, in connection_init, so each Authorization header value the
  // header editor has held gets a fetcher (and, when it subscribes, a socket) of its own.
  const fetchers = new Map();

  function fetcherFor(authorization) {
    let fetcher = fetchers.get(authorization);
    if (!fetcher) {
      fetcher = GraphiQL.createFetcher({
        url,
        subscriptionUrl,
        wsConnectionParams: authorization ? { authorization } : {},
      });
      fetchers.set(authorization, fetcher);
    }
    return fetcher;
  }

  function fetcher(graphQLParams, options) {
    const headers = (options && options.headers) || {};
    const name = Object.keys(headers).find((key) => key.toLowerCase() === "authorization");
    return fetcherFor(name ? String(headers[name]) : "")(graphQLParams, options);
  }

  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    const [query, setQuery] = React.useState(parameters.q || DEFAULT_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    return React.createElement(GraphiQL, {
      fetcher,
      plugins: [explorer],
      query,
      variables,
      onEditQuery(value) {
        setQuery(value);
        updateURL({ q: value });
      },
      onEditVariables(value) {
        setVariables(value);
        updateURL({ variables: value });
      },
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
