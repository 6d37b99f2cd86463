#!/usr/bin/env bash
# Rebuild dvc_plots_offline.html: DVC's plots page with vega, vega-lite and vega-embed inlined,
# so `dvc plots show` renders without internet (DVC's default page loads them from a CDN).
# Needs npm (the registry only). Versions are pinned; licences: BSD-3-Clause (all three).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0 >/dev/null
 for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done)
{
  echo '<!DOCTYPE html>'
  echo '<html>'
  echo '<head>'
  echo '    {refresh_tag}'
  echo '    <title>DVC Plot</title>'
  echo '    <!-- vega 5.33.1, vega-lite 5.23.0, vega-embed 6.29.0 (BSD-3-Clause), inlined by'
  echo '         workflow/report/make_offline_plots_template.sh -->'
  for js in vega-5.33.1/package/build/vega.min.js vega-lite-5.23.0/package/build/vega-lite.min.js \
            vega-embed-6.29.0/package/build/vega-embed.min.js; do
    printf '<script>\n'
    cat "$tmp/$js"
    printf '\n</script>\n'
  done
  echo '    <style>table { border-spacing: 15px; }</style>'
  echo '</head>'
  echo '<body>'
  echo '    {plot_divs}'
  echo '</body>'
  echo '</html>'
} > dvc_plots_offline.html
echo "wrote $(pwd)/dvc_plots_offline.html ($(wc -c < dvc_plots_offline.html) bytes)"
