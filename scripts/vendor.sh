#!/usr/bin/env bash
# Re-fetch the vendored front-end files from the npm registry (pages load nothing from a CDN).
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=sentiment/web/static/vendor
work=$(mktemp -d)
(cd "$work" && npm pack --silent htmx.org@2.0.11 swagger-ui-dist@5.35.0 >/dev/null && for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done)
cp "$work/htmx.org-2.0.11/package/dist/htmx.min.js" "$vendor/htmx-2.0.11.min.js"
cp "$work/htmx.org-2.0.11/package/LICENSE" "$vendor/htmx-2.0.11.LICENSE.txt"
cp "$work/swagger-ui-dist-5.35.0/package/swagger-ui-bundle.js" "$vendor/swagger-ui-5.35.0-bundle.js"
cp "$work/swagger-ui-dist-5.35.0/package/swagger-ui.css" "$vendor/swagger-ui-5.35.0.css"
cp "$work/swagger-ui-dist-5.35.0/package/LICENSE" "$vendor/swagger-ui-5.35.0.LICENSE.txt"
rm -rf "$work"
