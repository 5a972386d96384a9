#!/usr/bin/env bash
# Front-end libraries come from npm (package.json, package-lock.json) and are copied to
# static/vendor for Django's static files; none of them is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --silent
mkdir -p static/vendor
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/
cp node_modules/cytoscape/dist/cytoscape.min.js static/vendor/
cp node_modules/chart.js/dist/chart.umd.js static/vendor/
