#!/bin/sh
# Rebuilds the GraphiQL assets that the service serves itself (no CDN), from npm, at the
# pinned versions below. Run it from the repository's root; commit what it writes.
set -eu

GRAPHIQL=3.8.3
EXPLORER=1.0.2
REACT=18.2.0
JS_COOKIE=3.0.5

target="$(pwd)/src/group_orders/web/static/graphiql"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts \
  "graphiql@$GRAPHIQL" "@graphiql/plugin-explorer@$EXPLORER" \
  "react@$REACT" "react-dom@$REACT" "js-cookie@$JS_COOKIE" >/dev/null

modules="$scratch/node_modules"
mkdir -p "$target"
cp "$modules/react/umd/react.production.min.js" "$target/react.production.min.js"
cp "$modules/react-dom/umd/react-dom.production.min.js" "$target/react-dom.production.min.js"
cp "$modules/graphiql/graphiql.min.js" "$target/graphiql.min.js"
cp "$modules/graphiql/graphiql.min.css" "$target/graphiql.min.css"
cp "$modules/@graphiql/plugin-explorer/dist/index.umd.js" "$target/plugin-explorer.umd.js"
cp "$modules/@graphiql/plugin-explorer/dist/style.css" "$target/plugin-explorer.css"
# The minified bundles point at source maps that are not shipped.
sed -i '/^\/\/# sourceMappingURL=/d; s|/\*# sourceMappingURL=[^*]*\*/||' "$target"/*.js "$target"/*.css

{
  for package in graphiql react react-dom; do
    version=$(node -p "require('$modules/$package/package.json').version")
    printf '%s %s\n\n' "$package" "$version"
    cat "$modules/$package/LICENSE"
    printf '\n\n'
  done
  printf '@graphiql/plugin-explorer %s (MIT; the package ships no LICENSE file: it is\n' "$EXPLORER"
  printf 'the graphiql monorepo'"'"'s, the same as graphiql'"'"'s above)\n'
} > "$target/LICENSES.txt"

cat > "$target/VERSIONS.txt" <<VERSIONS
graphiql $GRAPHIQL
@graphiql/plugin-explorer $EXPLORER
react $REACT
react-dom $REACT
VERSIONS
echo "wrote $target"
