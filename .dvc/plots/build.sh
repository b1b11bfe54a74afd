#!/usr/bin/env bash
# Rebuild offline.html: DVC's plot page with Vega, Vega-Lite and Vega-Embed inlined, so that
# `dvc plots show` / `dvc plots diff` render with no network. The versions are pinned here
# (the majors DVC's own templates target); the packages come from the npm registry.
#   bash .dvc/plots/build.sh
set -euo pipefail
cd "$(dirname "$0")"
versions=(vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "${versions[@]}" >/dev/null)
for spec in "${versions[@]}"; do
    name=${spec%@*}
    mkdir -p "$work/$name" && tar xzf "$work/$name-${spec#*@}.tgz" -C "$work/$name"
done
cp "$work/vega-lite/package/LICENSE" LICENSE.vega-lite
cp "$work/vega-embed/package/LICENSE" LICENSE.vega-embed  # vega's npm package ships none: LICENSE.vega is from its repository
{
    printf '<!DOCTYPE html>\n<html>\n<head>\n    {refresh_tag}\n    <title>DVC Plot</title>\n'
    printf '    <!-- %s, inlined (BSD-3-Clause, licences beside this file); built by build.sh -->\n' "${versions[*]}"
    for name in vega vega-lite vega-embed; do
        printf '    <script>\n'
        cat "$work/$name/package/build/$name.min.js"
        printf '\n    </script>\n'
    done
    cat <<'HTML'
    <script>
        // DVC's page calls vegaEmbed(element, spec). Draw SVG, whose marks a test can count,
        // and leave out the menu whose links need the network.
        const embed = vegaEmbed;
        vegaEmbed = (element, spec, options) => embed(element, spec, { renderer: "svg", actions: false, ...options });
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
HTML
} > offline.html
