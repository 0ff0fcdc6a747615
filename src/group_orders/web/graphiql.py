"""GraphiQL for people exploring the API in a browser (development mode only).

Strawberry's page, with a token field above it: the token is kept in the browser's
localStorage and sent as ``Authorization: Bearer`` with every request.
"""

from __future__ import annotations

from functools import cache

from strawberry.http.ides import get_graphql_ide_html

_HEADER_HTML = """
    <form id="token-bar" style="display:flex;gap:.5rem;align-items:center;padding:.4rem .8rem;
      font:14px system-ui,sans-serif;border-bottom:1px solid #ddd">
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" style="flex:1"
        placeholder="gos_... or goa_... (printed by group-orders demo)">
      <button type="submit">Use token</button>
    </form>
    <div id="graphiql" class="graphiql-container">"""

_HEADER_SCRIPT = """
      const tokenKey = "group-orders-token";
      const tokenInput = document.getElementById("token");
      tokenInput.value = localStorage.getItem(tokenKey) || "";
      function applyToken() {
        const token = tokenInput.value.trim();
        localStorage.setItem(tokenKey, token);
        if (token) { defaultHeaders["Authorization"] = "Bearer " + token; }
        else { delete defaultHeaders["Authorization"]; }
      }
      document.getElementById("token-bar").addEventListener("submit", function (event) {
        event.preventDefault();
        applyToken();
      });
      applyToken();

      const fetcher = GraphiQL.createFetcher({"""

# Subscriptions (graphql-transport-ws) carry the token in connection_init's payload: the
# same object as the HTTP headers, so that "Use token" counts for both.
_FETCHER_OPTIONS = (
    "subscriptionUrl,\n",
    "subscriptionUrl,\n        wsConnectionParams: defaultHeaders,\n",
)

_EXAMPLE = """# Paste a token above (group-orders demo prints them), then run:
query GroupOrder($id: ID!) {
  groupOrder(id: $id, view: default) {
    id
    status
    totalOrders
    successfulOrders
    rejectedOrders
    normalizedCsv
    session(view: minimal) { userId expiresAt }
  }
}
"""


@cache
def graphiql_html() -> str:
    html = get_graphql_ide_html("graphiql")
    html = html.replace('<div id="graphiql" class="graphiql-container">', _HEADER_HTML, 1)
    html = html.replace("const fetcher = GraphiQL.createFetcher({", _HEADER_SCRIPT, 1)
    html = html.replace(*_FETCHER_OPTIONS, 1)
    start = html.index("const EXAMPLE_QUERY = `") + len("const EXAMPLE_QUERY = `")
    end = html.index("`;", start)
    html = html[:start] + _EXAMPLE + html[end:]
    return html.replace("<title>Strawberry GraphiQL</title>", "<title>group-orders</title>")
